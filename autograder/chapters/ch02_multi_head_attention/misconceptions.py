"""Chapter 2's misconceptions: (id, the wrong idea in one sentence, the heading of the section
that teaches the right one). Plain data: the grading parent process reads it without torch."""

MISCONCEPTIONS = [
    ("transpose_qkv_no_permute",
     "the heads are split with a reshape alone, which cuts each sequence in memory order and mixes heads with positions",
     "Heads as a batch: `transpose_qkv` and `transpose_output`"),
    ("transpose_output_mixes_heads",
     "the heads are merged with a reshape alone, so a position's features come from several positions of one head "
     "instead of from every head at that position",
     "Heads as a batch: `transpose_qkv` and `transpose_output`"),
    ("scale_by_num_hiddens",
     "the scores are divided by sqrt(num_hiddens), the width of all heads together, instead of sqrt(p), "
     "the width of one head",
     "Scaling by $\\sqrt{\\texttt{embed\\_size}}$"),
    ("heads_split_before_projection",
     "the inputs are split into heads before a projection shared by every head (the seed's layout), "
     "so each head sees only its slice of the features",
     "Splitting before projecting"),
    ("valid_lens_not_repeated",
     "valid_lens are not repeated for the heads, so there is one length for every num_heads rows of scores",
     "Valid lengths and heads"),
    ("heads_valid_lens_repeat",
     "valid_lens are tiled across the heads, so a head of one sequence gets the length of another sequence",
     "Valid lengths and heads"),
    ("keys_values_swapped",
     "keys and values are swapped, as in the seed's unpacking: the queries are compared with the values",
     "Keys and values swapped"),
    ("attention_dropout_in_eval",
     "dropout on the attention weights stays active in eval mode, so the layer is random at test time",
     "Multi-head attention, the d2l way"),
    ("torch_weights_transposed",
     "PyTorch's projection weights are transposed when copied, but they are already in nn.Linear's "
     "(out_features, in_features) layout",
     "Checking against PyTorch"),
    ("torch_biases_not_copied",
     "the biases are not copied from PyTorch's module (they start at zero there, which hides this on a fresh module)",
     "Checking against PyTorch"),
]
