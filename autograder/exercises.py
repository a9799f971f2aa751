"""The one table of exercises: id, chapter, graded name, points, and what a composite uses.

An exercise's id is ``exNN_<graded name in snake_case>``; it is the ``grade_id`` of the
solution cell that defines the name, and ``<id>_tests`` is the grade_id of its hidden
nbgrader test cell. The points here are the sum of the points of its grader tests
(tests/test_exercises.py checks that).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


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
    # Smaller exercises of the chapter that this one calls: while it is graded, the
    # reference versions are bound in the learner's namespace, so one bug costs points once.
    uses: tuple[str, ...] = ()

    @property
    def test_cell_id(self) -> str:
        return f"{self.id}_tests"


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


CHAPTERS = {c.id: c for c in [
    Chapter("01_self_attention", "Self-attention"),
]}

EXERCISES = {e.id: e for e in [
    Exercise("ex01_scaled_dot_product_attention", "01_self_attention", "scaled_dot_product_attention", 4),
    Exercise("ex01_causal_mask", "01_self_attention", "causal_mask", 1),
    Exercise("ex01_masked_softmax", "01_self_attention", "masked_softmax", 2),
    Exercise("ex01_self_attention", "01_self_attention", "SelfAttention", 3,
             uses=("scaled_dot_product_attention",)),
]}


def exercises_of(chapter: str) -> list[Exercise]:
    return [e for e in EXERCISES.values() if e.chapter == chapter]
