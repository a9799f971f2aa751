"""Buggy submissions of chapter 4, a Vision Transformer block."""

from mutants import Mutant

CHAPTER = "04_vit_block"
DROP_PATH, DROP_PATH_MODULE, MLP, ATTENTION, BLOCK = ("ex04_drop_path", "ex04_drop_path_module", "ex04_mlp",
                                                      "ex04_attention", "ex04_block")
MASK_SHAPE = "mask_shape = (x.shape[0],) + (1,) * (x.dim() - 1)"
DRAW = "mask = (torch.rand(mask_shape, device=x.device) < keep_prob).to(x.dtype)"
RESCALE = "mask = mask / keep_prob"
ATTN_BRANCH = "x = x + self.drop_path(self.attn(self.norm1(x)))"
MLP_BRANCH = "x = x + self.drop_path(self.mlp(self.norm2(x)))"
BRANCHES = f"{ATTN_BRANCH}\n        {MLP_BRANCH}"
QKV_SPLIT = ("qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim)   # (B, N, 3, heads, head_dim)\n"
             "        q, k, v = qkv.permute(2, 0, 3, 1, 4)")

MUTANTS = [
    Mutant("drop_path_per_element", CHAPTER, ((MASK_SHAPE, "mask_shape = x.shape"),), {DROP_PATH: 4}),
    Mutant("drop_path_no_rescale", CHAPTER, ((RESCALE, "mask = mask"),), {DROP_PATH: 3.5}),
    Mutant("drop_path_rescale_by_drop_prob", CHAPTER, ((RESCALE, "mask = mask / drop_prob"),), {DROP_PATH: 3.5}),
    Mutant("drop_path_keep_prob_swapped", CHAPTER, ((DRAW, DRAW.replace("< keep_prob", "< drop_prob")),),
           {DROP_PATH: 2.5}),
    Mutant("drop_path_nan_at_one", CHAPTER,
           (("if scale_by_keep and keep_prob > 0.:", "if scale_by_keep:"),), {DROP_PATH: 0.5}),
    Mutant("drop_path_in_place", CHAPTER,
           (("return x * mask                                                          # a new tensor",
             "return x.mul_(mask)                                                      # a new tensor"),),
           {DROP_PATH: 2}),
    Mutant("drop_path_mask_float32", CHAPTER, ((DRAW, DRAW.replace(".to(x.dtype)", ".float()")),), {DROP_PATH: 0.5}),
    Mutant("drop_path_active_in_eval", CHAPTER,
           (("return drop_path(x, self.drop_prob, self.training, self.scale_by_keep)",
             "return drop_path(x, self.drop_prob, True, self.scale_by_keep)"),), {DROP_PATH_MODULE: 1.5}),
    Mutant("mlp_act_layer_ignored", CHAPTER, (("self.act = act_layer()", "self.act = nn.GELU()"),), {MLP: 2}),
    Mutant("mlp_dropout_before_activation", CHAPTER,
           (("x = self.drop1(self.act(self.fc1(x)))", "x = self.act(self.drop1(self.fc1(x)))"),), {MLP: 1}),
    Mutant("mlp_out_defaults_to_hidden", CHAPTER,
           (("out_features = out_features or in_features", "out_features = out_features or hidden_features"),),
           {MLP: 1}),
    Mutant("attn_drop_on_output", CHAPTER,
           (("weights = self.attn_drop(weights)", "weights = weights"),
            ("x = (weights @ v).transpose(1, 2)", "x = self.attn_drop(weights @ v).transpose(1, 2)")), {ATTENTION: 1}),
    Mutant("qkv_wrong_slices", CHAPTER,
           ((QKV_SPLIT, "qkv = self.qkv(x).reshape(B, N, self.num_heads, 3, self.head_dim)\n"
                        "        q, k, v = qkv.permute(3, 0, 2, 1, 4)"),), {ATTENTION: 2}),
    Mutant("attention_scale_by_dim", CHAPTER,
           (("self.scale = self.head_dim ** -0.5", "self.scale = dim ** -0.5"),), {ATTENTION: 2}),
    Mutant("block_post_norm", CHAPTER,
           ((BRANCHES, "x = self.norm1(x + self.drop_path(self.attn(x)))\n"
                       "        x = self.norm2(x + self.drop_path(self.mlp(x)))"),), {BLOCK: 5}),
    Mutant("block_parallel_branches", CHAPTER,
           ((BRANCHES, "x = x + self.drop_path(self.attn(self.norm1(x))) + self.drop_path(self.mlp(self.norm2(x)))"),),
           {BLOCK: 3}),
    Mutant("drop_path_shared_between_branches", CHAPTER,
           ((BRANCHES, "keep = self.drop_path(torch.ones_like(x[:, :1, :1]))   # one draw for both branches\n"
                       "        x = x + keep * self.attn(self.norm1(x))\n"
                       "        x = x + keep * self.mlp(self.norm2(x))"),), {BLOCK: 2}),
    Mutant("block_dropout_rates_swapped", CHAPTER,
           (("attn_drop=attn_drop, proj_drop=drop)", "attn_drop=drop, proj_drop=attn_drop)"),), {BLOCK: 1}),
]
