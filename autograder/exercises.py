"""The one table of exercises: id, chapter, graded name, points, and what a composite uses.

An exercise's id is ``exNN_<graded name in snake_case>``; it is the ``grade_id`` of the
solution cell that defines the name, and ``<id>_tests`` is the grade_id of its hidden
nbgrader test cell. The points here are the sum of the points of its grader tests
(tests/test_exercises.py checks that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from autograder.paths import PACKAGE


@dataclass(frozen=True)
class Chapter:
    id: str  # "01_self_attention": also the notebook's file stem and the nbgrader assignment
    title: str

    @property
    def notebook(self) -> str:
        return f"{self.id}.ipynb"

    @property
    def grader_module(self) -> str:
        return f"autograder.graders.test_{self.id}"


@dataclass(frozen=True)
class Exercise:
    id: str
    chapter: str
    name: str  # the graded name the learner defines
    points: int
    # Graded names (of this chapter or an earlier one) that this exercise calls: while it is
    # graded, their reference versions are bound in the learner's namespace, so one bug
    # costs points once, on its own exercise.
    uses: tuple[str, ...] = ()

    @property
    def test_cell_id(self) -> str:
        return f"{self.id}_tests"


def grader_path(chapter: str) -> Path:
    """The chapter's grader tests: a pytest module, run with the learner's names as fixtures."""
    return PACKAGE / "graders" / f"test_{chapter}.py"


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


CHAPTERS: dict[str, Chapter] = {}
EXERCISES: dict[str, Exercise] = {}


def exercises_of(chapter: str) -> list[Exercise]:
    return [e for e in EXERCISES.values() if e.chapter == chapter]


def exercise_defining(name: str) -> Exercise | None:
    """The exercise whose graded name is ``name`` (graded names are unique across the course)."""
    return next((e for e in EXERCISES.values() if e.name == name), None)


def add_chapter(chapter_id: str, title: str, exercises: list[tuple]) -> None:
    """Register a chapter and its exercises, each (id, graded name, points[, uses])."""
    CHAPTERS[chapter_id] = Chapter(chapter_id, title)
    ordered = sorted(CHAPTERS.items())  # chapter order whatever the order of registration
    CHAPTERS.clear()
    CHAPTERS.update(ordered)
    for exercise_id, name, points, *uses in exercises:
        EXERCISES[exercise_id] = Exercise(exercise_id, chapter_id, name, points, tuple(uses[0]) if uses else ())


# One block per chapter, in chapter order.

add_chapter("01_self_attention", "Self-attention", [
    ("ex01_scaled_dot_product_attention", "scaled_dot_product_attention", 4),
    ("ex01_causal_mask", "causal_mask", 1),
    ("ex01_masked_softmax", "masked_softmax", 2),
    ("ex01_self_attention", "SelfAttention", 3, ["scaled_dot_product_attention"]),
])

add_chapter("02_multi_head_attention", "Multi-head attention", [
    ("ex02_transpose_qkv", "transpose_qkv", 2),
    ("ex02_transpose_output", "transpose_output", 2),
    ("ex02_multi_head_attention", "MultiHeadAttention", 8, ["transpose_qkv", "transpose_output"]),
    ("ex02_load_from_torch", "load_from_torch", 3),
])

add_chapter("03_add_and_norm", "Add & Norm", [
    ("ex03_layer_norm", "layer_norm", 4),
    ("ex03_dropout", "dropout", 4),
    ("ex03_add_norm", "AddNorm", 3),
    ("ex03_position_wise_ffn", "PositionWiseFFN", 2),
    ("ex03_encoder_block", "EncoderBlock", 5, ["MultiHeadAttention", "AddNorm", "PositionWiseFFN"]),
])

add_chapter("06_samout", "SamOut: a running maximum instead of attention", [
    ("ex06_max_state", "MaxState", 6),
    ("ex06_feed_forward", "FeedForward", 2),
    ("ex06_decoder_layer", "DecoderLayer", 3, ["MaxState", "FeedForward"]),
    ("ex06_sam_out", "SamOut", 6, ["DecoderLayer"]),
    ("ex06_generate", "generate", 4),
])

add_chapter("04_vit_block", "A Vision Transformer block", [
    ("ex04_drop_path", "drop_path", 5),
    ("ex04_drop_path_module", "DropPath", 3, ["drop_path"]),
    ("ex04_mlp", "Mlp", 3),
    ("ex04_attention", "Attention", 4),
    ("ex04_block", "Block", 6, ["DropPath", "Mlp", "Attention"]),
])

add_chapter("05_decoder_block", "The decoder block", [
    ("ex05_decoder_block", "DecoderBlock", 7, ["MultiHeadAttention", "AddNorm", "PositionWiseFFN"]),
    ("ex05_positional_encoding", "PositionalEncoding", 4),
    ("ex05_transformer_decoder", "TransformerDecoder", 4, ["DecoderBlock", "PositionalEncoding"]),
])
