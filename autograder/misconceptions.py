"""The catalogue of known misconceptions: id, the wrong idea in one sentence, where it is taught.

A hint states the wrong idea, never the missing line. ``section`` is the heading of the
notebook section that teaches the right idea. The implementations that reproduce each
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


MISCONCEPTIONS = {m.id: m for m in [
    # 01_self_attention
    Misconception("no_scaling", "01_self_attention",
                  "the scores are not divided by sqrt(d), so the softmax saturates as d grows",
                  "Why divide by the square root of d"),
    Misconception("scale_by_d", "01_self_attention",
                  "the scores are divided by d instead of sqrt(d)",
                  "Why divide by the square root of d"),
    Misconception("softmax_over_queries", "01_self_attention",
                  "the softmax normalises over the queries; each query's weights over the keys should sum to one",
                  "Scaled dot-product attention"),
    Misconception("mask_inverted", "01_self_attention",
                  "the mask is read backwards: True means a query may attend to that key",
                  "Masking"),
    Misconception("mask_after_softmax", "01_self_attention",
                  "the mask is applied after the softmax, so the kept weights no longer sum to one",
                  "Masking"),
    Misconception("mask_ignored", "01_self_attention",
                  "the mask argument has no effect",
                  "Masking"),
    Misconception("causal_mask_off_by_one", "01_self_attention",
                  "the causal mask is shifted by one: a position may attend to itself but not to the next one",
                  "Masking"),
    Misconception("causal_mask_upper", "01_self_attention",
                  "the causal mask lets each position see the future instead of the past",
                  "Masking"),
    Misconception("valid_lens_repeat", "01_self_attention",
                  "1-D valid_lens are tiled with repeat instead of repeated per query with repeat_interleave",
                  "Masking"),
    Misconception("masked_logits_zero", "01_self_attention",
                  "masked logits are set to 0 instead of a large negative value, so they still get weight",
                  "Masking"),
    Misconception("self_attention_unscaled", "01_self_attention",
                  "SelfAttention does not scale the scores by 1/sqrt(hidden_n), as in the seed's class",
                  "What goes wrong"),
    Misconception("self_attention_scale_by_input_n", "01_self_attention",
                  "SelfAttention scales by the input width instead of the width of the queries and keys",
                  "The SelfAttention module"),
]}
