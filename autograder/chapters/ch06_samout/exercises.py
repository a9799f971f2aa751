"""Chapter 6's exercises: (id, graded name, points[, the graded names it uses]).

The points are the sum of the grader tests' points (tests/test_exercises.py checks that).
"""

TITLE = "SamOut: a running maximum instead of attention"

EXERCISES = [
    ("ex06_max_state", "MaxState", 6),
    ("ex06_feed_forward", "FeedForward", 2),
    ("ex06_decoder_layer", "DecoderLayer", 3, ["MaxState", "FeedForward"]),
    ("ex06_sam_out", "SamOut", 6, ["DecoderLayer"]),
    ("ex06_generate", "generate", 4),
]
