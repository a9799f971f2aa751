"""The catalogue of known misconceptions: id, the wrong idea in one sentence, where it is taught.

A hint states the wrong idea, never the missing line. ``section`` is the text of the
heading of the notebook section that teaches the right idea (tests/test_exercises.py checks
that the heading exists). The implementations that reproduce each
misconception, so that graders can recognise it, are in ``autograder.variants``; this
module stays free of torch so that the grading parent process never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Misconception:
    id: str
    chapter: str
    hint: str
    section: str


MISCONCEPTIONS: dict[str, Misconception] = {}


def add_misconceptions(chapter: str, entries: list[tuple[str, str, str]]) -> None:
    """Register a chapter's misconceptions, each (id, hint, section)."""
    for misconception_id, hint, section in entries:
        if misconception_id in MISCONCEPTIONS:
            raise ValueError(f"misconception {misconception_id} is registered twice")
        MISCONCEPTIONS[misconception_id] = Misconception(misconception_id, chapter, hint, section)


# One block per chapter, in chapter order.

add_misconceptions("01_self_attention", [
    ("no_scaling",
     "the scores are not divided by sqrt(d), so the softmax saturates as d grows",
     "Why divide by $\\sqrt{d}$?"),
    ("scale_by_d",
     "the scores are divided by d instead of sqrt(d)",
     "Why divide by $\\sqrt{d}$?"),
    ("softmax_over_queries",
     "the softmax normalises over the queries; each query's weights over the keys should sum to one",
     "Scaled dot-product attention"),
    ("mask_inverted",
     "the mask is read backwards: True means a query may attend to that key",
     "Masks: which keys may a query see?"),
    ("mask_after_softmax",
     "the mask is applied after the softmax, so the kept weights no longer sum to one",
     "Masks: which keys may a query see?"),
    ("mask_ignored",
     "the mask argument has no effect",
     "Masks: which keys may a query see?"),
    ("causal_mask_off_by_one",
     "the causal mask is shifted by one: a position may attend to itself but not to the next one",
     "Masks: which keys may a query see?"),
    ("causal_mask_upper",
     "the causal mask lets each position see the future instead of the past",
     "Masks: which keys may a query see?"),
    ("valid_lens_repeat",
     "1-D valid_lens are tiled with repeat instead of repeated per query with repeat_interleave",
     "d2l's valid lengths"),
    ("masked_logits_zero",
     "masked logits are set to 0 instead of a large negative value, so they still get weight",
     "d2l's valid lengths"),
    ("self_attention_unscaled",
     "SelfAttention does not scale the scores by 1/sqrt(hidden_n), as in the seed's class",
     "What goes wrong: the seed's `Attention`"),
    ("self_attention_scale_by_input_n",
     "SelfAttention scales by the input width instead of the width of the queries and keys",
     "A self-attention layer"),
])
