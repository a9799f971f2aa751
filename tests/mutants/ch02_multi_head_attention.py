"""Buggy submissions of chapter 2, multi-head attention."""

from mutants import Mutant

CHAPTER = "02_multi_head_attention"
TRANSPOSE_QKV, TRANSPOSE_OUTPUT, MHA, LOAD = ("ex02_transpose_qkv", "ex02_transpose_output",
                                              "ex02_multi_head_attention", "ex02_load_from_torch")

QKV_PERMUTE = "X = X.permute(0, 2, 1, 3)                 # (batch, h, n, p): the heads move before the positions"
OUTPUT_PERMUTE = "X = X.permute(0, 2, 1, 3)                                  # (batch, n, h, p): positions first again"
SCORES = "scores = q @ k.transpose(1, 2) / math.sqrt(q.shape[-1])"
REPEAT = "valid_lens = valid_lens.repeat_interleave(self.num_heads, dim=0)"
PROJECT_Q = "q = transpose_qkv(self.W_q(queries), self.num_heads)"
PROJECTIONS = """self.W_q = nn.Linear(query_size, num_hiddens, bias=bias)
        self.W_k = nn.Linear(key_size, num_hiddens, bias=bias)
        self.W_v = nn.Linear(value_size, num_hiddens, bias=bias)"""
SPLIT_THEN_PROJECT = """q = transpose_qkv(self.W_q(queries), self.num_heads)    # (batch * h, n_q, p)
        k = transpose_qkv(self.W_k(keys), self.num_heads)       # (batch * h, n_k, p)
        v = transpose_qkv(self.W_v(values), self.num_heads)     # (batch * h, n_k, p)"""

MUTANTS = [
    Mutant("transpose_qkv_no_permute", CHAPTER, ((QKV_PERMUTE, "pass"),), {TRANSPOSE_QKV: 2}),
    Mutant("transpose_output_mixes_heads", CHAPTER, ((OUTPUT_PERMUTE, "pass"),), {TRANSPOSE_OUTPUT: 2}),
    Mutant("scale_by_num_hiddens", CHAPTER,
           ((SCORES, "scores = q @ k.transpose(1, 2) / math.sqrt(self.W_q.out_features)"),), {MHA: 4}),
    # The seed's layout: split the inputs, then one Linear(head_dim, head_dim) shared by the heads.
    Mutant("heads_split_before_projection", CHAPTER,
           ((PROJECTIONS, """head_dim = num_hiddens // num_heads
        self.W_q = nn.Linear(head_dim, head_dim, bias=bias)
        self.W_k = nn.Linear(head_dim, head_dim, bias=bias)
        self.W_v = nn.Linear(head_dim, head_dim, bias=bias)"""),
            (SPLIT_THEN_PROJECT, """q = self.W_q(transpose_qkv(queries, self.num_heads))
        k = self.W_k(transpose_qkv(keys, self.num_heads))
        v = self.W_v(transpose_qkv(values, self.num_heads))""")), {MHA: 8}),
    Mutant("valid_lens_not_repeated", CHAPTER, ((REPEAT, "pass"),), {MHA: 6}),
    Mutant("heads_valid_lens_repeat", CHAPTER,
           ((REPEAT, "valid_lens = valid_lens.repeat(self.num_heads)"),), {MHA: 6}),
    # The seed's unpacking, written into d2l's forward.
    Mutant("keys_values_swapped", CHAPTER,
           ((PROJECT_Q, "queries, values, keys = queries, keys, values\n        " + PROJECT_Q),), {MHA: 7}),
    Mutant("attention_dropout_in_eval", CHAPTER,
           (("heads = self.dropout(self.attention_weights) @ v",
             "heads = F.dropout(self.attention_weights, self.dropout.p) @ v"),), {MHA: 1}),
    Mutant("torch_weights_transposed", CHAPTER,
           (("linear.weight.copy_(weight)", "linear.weight.copy_(weight.T)"),), {LOAD: 2}),
    Mutant("torch_biases_not_copied", CHAPTER, (("linear.bias.copy_(bias)", "pass"),), {LOAD: 2}),
]
