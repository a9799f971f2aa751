"""Chapter 4's exercises: (id, graded name, points[, the graded names it uses]).

The points are the sum of the grader tests' points (tests/test_exercises.py checks that).
"""

TITLE = "A Vision Transformer block"

EXERCISES = [
    ("ex04_drop_path", "drop_path", 5),
    ("ex04_drop_path_module", "DropPath", 3, ["drop_path"]),
    ("ex04_mlp", "Mlp", 3),
    ("ex04_attention", "Attention", 4),
    ("ex04_block", "Block", 6, ["DropPath", "Mlp", "Attention"]),
]
