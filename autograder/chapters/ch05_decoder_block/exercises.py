"""Chapter 5's exercises: (id, graded name, points[, the graded names it uses]).

The points are the sum of the grader tests' points (tests/test_exercises.py checks that).
"""

TITLE = "The decoder block"

EXERCISES = [
    ("ex05_decoder_block", "DecoderBlock", 7, ["MultiHeadAttention", "AddNorm", "PositionWiseFFN"]),
    ("ex05_positional_encoding", "PositionalEncoding", 4),
    ("ex05_transformer_decoder", "TransformerDecoder", 4, ["DecoderBlock", "PositionalEncoding"]),
]
