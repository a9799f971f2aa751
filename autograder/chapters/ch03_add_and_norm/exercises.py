"""Chapter 3's exercises: (id, graded name, points[, the graded names it uses]).

The points are the sum of the grader tests' points (tests/test_exercises.py checks that).
"""

TITLE = "Add & Norm"

EXERCISES = [
    ("ex03_layer_norm", "layer_norm", 4),
    ("ex03_dropout", "dropout", 4),
    ("ex03_add_norm", "AddNorm", 3),
    ("ex03_position_wise_ffn", "PositionWiseFFN", 2),
    ("ex03_encoder_block", "EncoderBlock", 5, ["MultiHeadAttention", "AddNorm", "PositionWiseFFN"]),
]
