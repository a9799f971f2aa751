"""The catalogue of buggy submissions, one module per chapter.

Each mutant is the reference notebook with one realistic bug edited in (each replacement
must match exactly once, so a mutant can never silently become the reference). It is named
by the misconception it commits, and says which exercise loses how many points and which
misconception the graders must name.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    misconception: str  # the id the graders must name
    chapter: str
    replacements: tuple[tuple[str, str], ...]  # (old, new) in the reference's code cells
    loses: dict  # exercise id -> points lost; every other exercise keeps full marks


# The mutants whose bug is in their exercise's core idea (CONTRIBUTING, "How many points a bug
# costs"): each must lose at least half of its exercise's points. Every other mutant breaks a
# secondary property (a flag, a dtype, an edge case, a default, bookkeeping) and loses less.
CORE_IDEA = {
    # 01: scaling by 1/sqrt(d), softmax over the keys, the mask before the softmax; the causal triangle;
    # masked_softmax's masking; SelfAttention's scale
    "no_scaling", "scale_by_d", "softmax_over_queries", "mask_inverted", "mask_after_softmax", "mask_ignored",
    "mask_fill_zero", "causal_mask_off_by_one", "causal_mask_upper", "valid_lens_repeat", "masked_logits_zero",
    "self_attention_unscaled", "self_attention_scale_by_input_n",
    # 02: heads split and merged with the permute; project then split, scale by sqrt(head_dim), lengths per
    # head, keys apart from values; torch's weights copied as they are
    "transpose_qkv_no_permute", "transpose_output_mixes_heads", "scale_by_num_hiddens",
    "heads_split_before_projection", "valid_lens_not_repeated", "heads_valid_lens_repeat", "keys_values_swapped",
    "torch_weights_transposed", "torch_biases_not_copied",
    # 03: per-sample statistics, biased variance, eps inside the root; inverted dropout's rate and scale;
    # ln(dropout(Y) + X); dense-relu-dense; the encoder's wiring
    "layernorm_over_batch", "layernorm_unbiased_variance", "layernorm_eps_outside_sqrt", "layernorm_last_axis_only",
    "dropout_not_rescaled", "dropout_scaled_by_p", "dropout_keep_probability_swapped", "dropout_classic_test_scaling",
    "norm_before_add", "residual_added_twice", "ffn_no_activation", "ffn_outputs_input_size",
    "encoder_valid_lens_ignored", "encoder_residual_twice", "encoder_ffn_on_input",
    # 04: one draw per sample, rescaled by the keep probability; DropPath follows the training flag;
    # the activation from act_layer; timm's qkv layout and head_dim scale; pre-norm residual branches
    "drop_path_per_element", "drop_path_no_rescale", "drop_path_rescale_by_drop_prob", "drop_path_keep_prob_swapped",
    "drop_path_active_in_eval", "mlp_act_layer_ignored", "qkv_wrong_slices", "attention_scale_by_dim",
    "block_post_norm", "block_parallel_branches",
    # 05: causal self-attention, in training and through a cache of every earlier input; the encoder as keys
    # and values; the interleaved sine-cosine table
    "decoder_no_causal_mask", "cache_stores_outputs", "cache_not_updated", "cross_attention_queries_encoder",
    "pe_not_interleaved",
    # 06: a running max over time per head, continued from its state; the gated FFN; the alpha mix;
    # tied embedding and logits; generation that carries the state
    "cummax_wrong_axis", "cummax_heads_mixed", "max_state_ignores_state", "ffn_relu_on_wrong_branch",
    "ffn_gate_without_relu", "alpha_on_wrong_branch", "samout_separate_output_head", "generate_drops_state",
}
