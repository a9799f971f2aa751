"""Buggy submissions of chapter 3, Add & Norm."""

from mutants import Mutant

CHAPTER = "03_add_and_norm"
LAYER_NORM, DROPOUT, ADD_NORM, FFN, ENCODER = ("ex03_layer_norm", "ex03_dropout", "ex03_add_norm",
                                               "ex03_position_wise_ffn", "ex03_encoder_block")

DIMS = "dims = tuple(range(-gamma.dim(), 0))"
MEAN = "mean = x.mean(dim=dims, keepdim=True)"
VAR = "var = ((x - mean) ** 2).mean(dim=dims, keepdim=True)"
NORMALISE = "return gamma * (x - mean) / torch.sqrt(var + eps) + beta"
EVAL = "if not training or p == 0:"
KEEP = "keep = torch.rand(x.shape, device=x.device) >= p"
SCALE = "return x * keep / (1 - p)"
ADD_NORM_FORWARD = "return self.ln(self.dropout(Y) + X)"
ATTENTION_SUBLAYER = "Y = self.addnorm1(X, self.attention(X, X, X, valid_lens))"
FFN_SUBLAYER = "return self.addnorm2(Y, self.ffn(Y))"

MUTANTS = [
    Mutant("layernorm_over_batch", CHAPTER,
           ((MEAN, "mean = x.mean(dim=0, keepdim=True)"), (VAR, "var = ((x - mean) ** 2).mean(dim=0, keepdim=True)")),
           {LAYER_NORM: 3}),
    Mutant("layernorm_unbiased_variance", CHAPTER, ((VAR, "var = x.var(dim=dims, keepdim=True)"),), {LAYER_NORM: 4}),
    Mutant("layernorm_eps_outside_sqrt", CHAPTER,
           ((NORMALISE, "return gamma * (x - mean) / (torch.sqrt(var) + eps) + beta"),), {LAYER_NORM: 2}),
    Mutant("layernorm_last_axis_only", CHAPTER, ((DIMS, "dims = (-1,)"),), {LAYER_NORM: 2}),
    Mutant("dropout_not_rescaled", CHAPTER, ((SCALE, "return x * keep"),), {DROPOUT: 2}),
    Mutant("dropout_scaled_by_p", CHAPTER, ((SCALE, "return x * keep / p"),), {DROPOUT: 2}),
    # p read as the probability of keeping an element.
    Mutant("dropout_keep_probability_swapped", CHAPTER,
           ((KEEP, "keep = torch.rand(x.shape, device=x.device) < p"), (SCALE, "return x * keep / p")), {DROPOUT: 3}),
    Mutant("dropout_in_eval", CHAPTER, ((EVAL, "if p == 0:"),), {DROPOUT: 1}),
    # Classic dropout: no rescaling in training, the output scaled by 1 - p at test time.
    Mutant("dropout_classic_test_scaling", CHAPTER,
           ((EVAL, "if not training:\n        return x * (1 - p)\n    if p == 0:"), (SCALE, "return x * keep")),
           {DROPOUT: 3}),
    Mutant("norm_before_add", CHAPTER, ((ADD_NORM_FORWARD, "return X + self.ln(self.dropout(Y))"),), {ADD_NORM: 2}),
    Mutant("residual_added_twice", CHAPTER, ((ADD_NORM_FORWARD, "return X + self.ln(self.dropout(Y) + X)"),),
           {ADD_NORM: 2}),
    Mutant("dropout_on_residual", CHAPTER, ((ADD_NORM_FORWARD, "return self.ln(self.dropout(Y + X))"),), {ADD_NORM: 1}),
    Mutant("addnorm_dropout_hard_coded", CHAPTER,
           (("self.dropout = nn.Dropout(dropout)", "self.dropout = nn.Dropout(0.1)"),), {ADD_NORM: 1}),
    Mutant("dropout_mask_float32", CHAPTER, ((KEEP, "keep = (torch.rand(x.shape) > p).float()"),), {DROPOUT: 1}),
    Mutant("layernorm_library_statistics", CHAPTER,
           ((VAR, "var, _ = torch.var_mean(x, dim=dims, correction=0, keepdim=True)"),), {LAYER_NORM: 1}),
    Mutant("ffn_no_activation", CHAPTER,
           (("return self.dense2(self.relu(self.dense1(X)))", "return self.dense2(self.dense1(X))"),), {FFN: 1}),
    Mutant("ffn_outputs_input_size", CHAPTER,
           (("self.dense2 = nn.Linear(ffn_num_hiddens, ffn_num_outputs)",
             "self.dense2 = nn.Linear(ffn_num_hiddens, ffn_num_input)"),), {FFN: 2}),
    Mutant("encoder_valid_lens_ignored", CHAPTER,
           ((ATTENTION_SUBLAYER, "Y = self.addnorm1(X, self.attention(X, X, X, None))"),), {ENCODER: 4}),
    Mutant("encoder_residual_twice", CHAPTER,
           ((ATTENTION_SUBLAYER, "Y = self.addnorm1(X, X + self.attention(X, X, X, valid_lens))"),), {ENCODER: 3}),
    Mutant("encoder_ffn_on_input", CHAPTER, ((FFN_SUBLAYER, "return self.addnorm2(Y, self.ffn(X))"),), {ENCODER: 3}),
]
