"""Chapter 2's exercises: (id, graded name, points[, the graded names it uses]).

The points are the sum of the grader tests' points (tests/test_exercises.py checks that).
"""

TITLE = "Multi-head attention"

EXERCISES = [
    ("ex02_transpose_qkv", "transpose_qkv", 2),
    ("ex02_transpose_output", "transpose_output", 2),
    ("ex02_multi_head_attention", "MultiHeadAttention", 8, ["transpose_qkv", "transpose_output"]),
    ("ex02_load_from_torch", "load_from_torch", 3),
]
