"""The catalogue of known misconceptions: id, the wrong idea in one sentence, where it is taught.

A hint states the wrong idea, never the missing line. ``section`` is the text of the
heading of the notebook section that teaches the right idea (tests/test_exercises.py checks
that the heading exists). The implementations that reproduce each
misconception, so that graders can recognise it, are in ``autograder.variants``; this
module stays free of torch so that the grading parent process never imports it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Misconception:
    id: str
    chapter: str
    hint: str
    section: str


MISCONCEPTIONS: dict[str, Misconception] = {}


def add_misconceptions(chapter: str, entries: list[tuple[str, str, str]]) -> None:
    """Register a chapter's misconceptions, each (id, hint, section)."""
    for misconception_id, hint, section in entries:
        if misconception_id in MISCONCEPTIONS:
            raise ValueError(f"misconception {misconception_id} is registered twice")
        MISCONCEPTIONS[misconception_id] = Misconception(misconception_id, chapter, hint, section)


# One block per chapter, in chapter order.

add_misconceptions("01_self_attention", [
    ("no_scaling",
     "the scores are not divided by sqrt(d), so the softmax saturates as d grows",
     "Why divide by $\\sqrt{d}$?"),
    ("scale_by_d",
     "the scores are divided by d instead of sqrt(d)",
     "Why divide by $\\sqrt{d}$?"),
    ("softmax_over_queries",
     "the softmax normalises over the queries; each query's weights over the keys should sum to one",
     "Scaled dot-product attention"),
    ("mask_inverted",
     "the mask is read backwards: True means a query may attend to that key",
     "Masks: which keys may a query see?"),
    ("mask_after_softmax",
     "the mask is applied after the softmax, so the kept weights no longer sum to one",
     "Masks: which keys may a query see?"),
    ("mask_ignored",
     "the mask argument has no effect",
     "Masks: which keys may a query see?"),
    ("mask_fill_zero",
     "masked scores are set to 0 instead of -inf, so masked keys still take part in the softmax and the kept "
     "weights no longer sum to one",
     "Masks: which keys may a query see?"),
    ("causal_mask_off_by_one",
     "the causal mask leaves out the diagonal (strictly below it), so a position cannot attend to itself, "
     "only to earlier positions",
     "Masks: which keys may a query see?"),
    ("causal_mask_upper",
     "the causal mask lets each position see the future instead of the past",
     "Masks: which keys may a query see?"),
    ("valid_lens_repeat",
     "1-D valid_lens are tiled with repeat instead of repeated per query with repeat_interleave",
     "d2l's valid lengths"),
    ("masked_logits_zero",
     "masked logits are set to 0 instead of a large negative value, so they still get weight",
     "d2l's valid lengths"),
    ("self_attention_unscaled",
     "SelfAttention does not scale the scores by 1/sqrt(hidden_n), as in the seed's class",
     "What goes wrong: the seed's `Attention`"),
    ("self_attention_scale_by_input_n",
     "SelfAttention scales by the input width instead of the width of the queries and keys",
     "A self-attention layer"),
])

add_misconceptions("02_multi_head_attention", [
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
])

add_misconceptions("03_add_and_norm", [
    ("layernorm_over_batch",
     "the statistics are taken over the batch axis, as batch normalisation does, instead of over each sample's features",
     "Layer normalisation"),
    ("layernorm_unbiased_variance",
     "the variance is the unbiased one (divided by N - 1); layer normalisation divides by N",
     "Layer normalisation"),
    ("layernorm_eps_outside_sqrt",
     "eps is added to the standard deviation instead of to the variance inside the square root",
     "Layer normalisation"),
    ("layernorm_last_axis_only",
     "only the last axis is normalised, whatever the number of axes of gamma",
     "Layer normalisation"),
    ("dropout_not_rescaled",
     "the kept elements are not divided by 1 - p, so the output is smaller in training than at test time",
     "Dropout"),
    ("dropout_scaled_by_p",
     "the kept elements are divided by p instead of by 1 - p, the probability of keeping them",
     "Dropout"),
    ("dropout_keep_probability_swapped",
     "p is taken as the probability of keeping an element; it is the probability of zeroing it",
     "Dropout"),
    ("dropout_in_eval",
     "dropout still drops elements when not training; in eval mode it must be the identity",
     "Dropout"),
    ("dropout_mask_float32",
     "the mask is made as a float32 tensor whatever x is, so a half-precision x comes back promoted to float32 "
     "(and a mask made on the CPU does not follow x to the GPU)",
     "Dropout"),
    ("layernorm_library_statistics",
     "the variance or the normalisation comes from a library call (Tensor.var, torch.var_mean, torch.std, "
     "F.layer_norm...), where the exercise asks to compute the biased variance from its definition",
     "Layer normalisation"),
    ("dropout_classic_test_scaling",
     "the output is scaled by 1 - p at test time, as classic dropout does; inverted dropout rescales in training "
     "and is the identity at test time",
     "Dropout"),
    ("norm_before_add",
     "the sublayer output is normalised before the residual is added (the seed's AddNorm), so the sum is not normalised",
     "Normalising before adding, and dropping out the residual"),
    ("residual_added_twice",
     "the residual is added a second time after the normalisation",
     "Add & Norm"),
    ("dropout_on_residual",
     "dropout acts on the sum, residual included (as in the seed), instead of on the sublayer output only",
     "Normalising before adding, and dropping out the residual"),
    ("addnorm_dropout_hard_coded",
     "the dropout rate is hard-coded (0.1 in the seed) instead of taken from the dropout argument",
     "What goes wrong: the seed's `AddNorm` and `TransformerBlock`"),
    ("ffn_no_activation",
     "there is no ReLU between the two layers, so the network is one linear map",
     "Position-wise feed-forward network"),
    ("ffn_outputs_input_size",
     "the second layer maps back to ffn_num_input features instead of ffn_num_outputs",
     "Position-wise feed-forward network"),
    ("encoder_valid_lens_ignored",
     "the block's attention is called without valid_lens, so the padding is attended to",
     "The encoder block"),
    ("encoder_residual_twice",
     "the sublayer output given to AddNorm already includes the residual, so the residual is added twice",
     "The encoder block"),
    ("encoder_ffn_on_input",
     "the feed-forward network is applied to the block's input instead of to the output of the first AddNorm",
     "The encoder block"),
])

add_misconceptions("06_samout", [
    ("cummax_wrong_axis",
     "the running maximum is taken along the heads or the channels instead of along the sequence",
     "A running maximum over the sequence"),
    ("cummax_heads_mixed",
     "the heads are split by a reshape to (batch, heads, seq, head_size) without the permute, which mixes positions with channels",
     "Heads: a reshape and a permute"),
    ("max_state_unscaled",
     "z is not divided by sqrt(head_size)",
     "Heads: a reshape and a permute"),
    ("max_state_scaled_by_hidden_dim",
     "z is divided by sqrt(hidden_dim) instead of sqrt(head_size), the width of one head",
     "Heads: a reshape and a permute"),
    ("max_state_ignores_state",
     "the state passed in is ignored, so every call starts its running maximum afresh",
     "The state: a running maximum has constant size"),
    ("max_state_modifies_state",
     "forward writes into the state it was given, so the caller's state is lost",
     "The state: a running maximum has constant size"),
    ("ffn_relu_on_wrong_branch",
     "the ReLU is applied to the ffn1 branch; it belongs on the gate",
     "The gated feed-forward network"),
    ("ffn_gate_without_relu",
     "the gate has no ReLU, so it cannot switch channels off",
     "The gated feed-forward network"),
    ("alpha_on_wrong_branch",
     "alpha weighs the layer's input and 1 - alpha the feed-forward branch, the wrong way round",
     "The learned mix alpha"),
    ("alpha_not_learned",
     "alpha is not a learned scalar nn.Parameter of shape () that starts at 0.5",
     "The learned mix alpha"),
    ("decoder_layer_skips_max_state",
     "the feed-forward network is applied to the layer's input instead of MaxState's output",
     "A decoder layer with a learned mix"),
    ("samout_residual_missing",
     "each layer's output replaces its input instead of being added to it",
     "Each layer's output is added to its input"),
    ("samout_separate_output_head",
     "the logits come from a separate output layer instead of the embedding matrix itself",
     "Tied input and output embeddings"),
    ("samout_no_padding_idx",
     "the embedding is built without padding_idx=3, so the padding row is not zero as built",
     "The padding row"),
    ("samout_state_modified_in_place",
     "the list of states passed in is overwritten with the new states, so a state cannot be reused to branch",
     "The state: a running maximum has constant size"),
    ("generate_rereads_sequence",
     "each step runs the model over the whole text again instead of feeding one token with the state",
     "Generating text with the state"),
    ("generate_drops_state",
     "each step feeds one token without the state, so the model forgets the text before it",
     "Generating text with the state"),
    ("generate_temperature_multiplied",
     "the logits are multiplied by the temperature instead of divided by it",
     "Generating text with the state"),
    ("generate_top_k_wrong",
     "top_k does not keep exactly the k largest logits before sampling",
     "Generating text with the state"),
])

add_misconceptions("04_vit_block", [
    ("drop_path_per_element",
     "the keep-or-drop decision is drawn for every element, as in dropout; stochastic depth draws one per sample "
     "and keeps or drops its whole branch",
     "Stochastic depth: dropping whole branches"),
    ("drop_path_no_rescale",
     "the kept samples are not divided by the keep probability, so the expected output shrinks by 1 - drop_prob",
     "Stochastic depth: dropping whole branches"),
    ("drop_path_rescale_by_drop_prob",
     "the kept samples are divided by drop_prob, where the keep probability 1 - drop_prob belongs",
     "Stochastic depth: dropping whole branches"),
    ("drop_path_keep_prob_swapped",
     "drop_prob is used as the probability of keeping a sample instead of dropping it",
     "Stochastic depth: dropping whole branches"),
    ("drop_path_active_in_eval",
     "stochastic depth keeps dropping samples outside training; at evaluation it is the identity",
     "Exercise 2 (3 points): `DropPath`"),
    ("drop_path_nan_at_one",
     "with drop_prob = 1 the keep probability is 0, and dividing by it turns the dropped samples into NaN",
     "Exercise 1 (5 points): `drop_path`"),
    ("drop_path_in_place",
     "the input tensor is modified in place, so the caller's tensor changes",
     "Exercise 1 (5 points): `drop_path`"),
    ("drop_path_mask_float32",
     "the mask is made in float32 whatever the input's dtype, so half-precision inputs come back promoted",
     "Exercise 1 (5 points): `drop_path`"),
    ("mlp_act_layer_ignored",
     "the activation is fixed instead of being built from act_layer",
     "The MLP"),
    ("mlp_out_defaults_to_hidden",
     "out_features defaults to hidden_features; it defaults to in_features, so that the MLP maps tokens back to "
     "the width of the residual stream",
     "The MLP"),
    ("attn_drop_on_output",
     "attn_drop acts on the attended values (attn @ v) instead of on the attention weights, so it zeroes whole "
     "output features instead of single query-key links",
     "Attention with one qkv projection"),
    ("mlp_dropout_before_activation",
     "the first dropout acts before the activation; timm's MLP drops after the activation and after fc2",
     "The MLP"),
    ("qkv_wrong_slices",
     "q, k and v are cut from the wrong channels of qkv: its output channels are laid out as (3, heads, head_dim)",
     "Attention with one qkv projection"),
    ("attention_scale_by_dim",
     "the scores are scaled by dim ** -0.5 instead of head_dim ** -0.5",
     "Attention with one qkv projection"),
    ("block_post_norm",
     "the block normalises after the residual add (post-norm); a ViT block normalises each branch's input and "
     "adds to an unnormalised stream",
     "Pre-norm residual blocks"),
    ("block_parallel_branches",
     "the MLP branch reads the block's input instead of the stream after the attention branch",
     "The Block"),
    ("drop_path_shared_between_branches",
     "one keep-or-drop decision per sample is shared by both branches; each branch draws its own",
     "The Block"),
    ("block_dropout_rates_swapped",
     "drop and attn_drop are routed to each other's places: attn_drop acts on the attention weights, drop after "
     "the projection and in the MLP",
     "The Block"),
])

add_misconceptions("05_decoder_block", [
    ("decoder_no_causal_mask",
     "in training the self-attention sees the whole target; each position may attend only to itself and to "
     "earlier positions",
     "Training and prediction"),
    ("cache_stores_outputs",
     "the cache keeps the block's outputs; it holds the block's inputs, the keys and values of its self-attention",
     "The cache"),
    ("cache_not_updated",
     "the cache is never extended, so a token decoded later cannot attend to the earlier ones",
     "The cache"),
    ("cache_wrong_block",
     "the blocks share one cache slot; block i keeps its own in state[2][i]",
     "The cache"),
    ("cross_attention_queries_encoder",
     "the encoder-decoder attention takes its queries from the encoder; the queries come from the decoder, the "
     "keys and values from the encoder",
     "The decoder block"),
    ("addnorm_arguments_swapped",
     "AddNorm's arguments are swapped: the first is the residual (the sublayer's input), the second the sublayer's "
     "output, on which dropout acts",
     "The decoder block"),
    ("decoder_enc_valid_lens_ignored",
     "the encoder-decoder attention ignores enc_valid_lens, so padded source positions get weight",
     "The decoder block"),
    ("pe_not_interleaved",
     "the sines and cosines are stacked in two halves; they alternate, sine in the even channels and cosine in "
     "the odd ones",
     "Positional encoding"),
    ("pe_offset_ignored",
     "the positional encoding ignores offset, so every call encodes positions from 0",
     "Exercise 2 (4 points): `PositionalEncoding`"),
    ("pe_table_in_state_dict",
     "the positional table is saved in the state_dict as if it were a weight; it is a constant",
     "Exercise 2 (4 points): `PositionalEncoding`"),
    ("pe_dtype_fixed",
     "the positional table is added in its own dtype, so the output does not follow the input's dtype",
     "Exercise 2 (4 points): `PositionalEncoding`"),
    ("decoder_position_offset_missing",
     "every token decoded one at a time gets position 0's encoding (d2l's bug); the encoding starts at the number "
     "of tokens already in the cache",
     "d2l's bug: every step at position 0"),
    ("decoder_embedding_unscaled",
     "the embeddings are not multiplied by sqrt(num_hiddens) before the positional encoding is added",
     "Exercise 3 (4 points): `TransformerDecoder`"),
])
