"""Chapter 1's exercises: (id, graded name, points[, the graded names it uses]).

The points are the sum of the grader tests' points (tests/test_exercises.py checks that).
"""

TITLE = "Self-attention"

EXERCISES = [
    ("ex01_scaled_dot_product_attention", "scaled_dot_product_attention", 4),
    ("ex01_causal_mask", "causal_mask", 1),
    ("ex01_masked_softmax", "masked_softmax", 2),
    ("ex01_self_attention", "SelfAttention", 3, ["scaled_dot_product_attention"]),
]
