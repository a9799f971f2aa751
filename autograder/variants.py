"""Implementations of known misconceptions (see ``autograder.misconceptions``).

Each ``*_variants`` function returns, for the inputs a grader used, a mapping from
misconception id to what that misconception would return (or a function computing it).
``probes.check_close`` compares a learner's wrong value against them to name the bug.
"""

from __future__ import annotations

import math

import torch


# ---- chapter 1 ---------------------------------------------------------------------------

def _attention(q, k, v, mask, scale, softmax_dim=-1, mask_after=False, fill=float("-inf")):
    scores = q @ k.transpose(-2, -1) * scale
    if mask is not None and not mask_after:
        scores = scores.masked_fill(~mask, fill)
    weights = torch.softmax(scores, dim=softmax_dim)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)
    return weights @ v, weights


def sdpa_variants(q, k, v, mask=None) -> dict:
    """What each misconception of scaled_dot_product_attention returns on these inputs."""
    d = q.shape[-1]
    variants = {
        "no_scaling": lambda: _attention(q, k, v, mask, 1.0),
        "scale_by_d": lambda: _attention(q, k, v, mask, 1 / d),
        "softmax_over_queries": lambda: _attention(q, k, v, mask, 1 / math.sqrt(d), softmax_dim=-2),
    }
    if mask is not None:
        variants |= {
            "mask_inverted": lambda: _attention(q, k, v, ~mask, 1 / math.sqrt(d)),
            "mask_after_softmax": lambda: _attention(q, k, v, mask, 1 / math.sqrt(d), mask_after=True),
            "mask_ignored": lambda: _attention(q, k, v, None, 1 / math.sqrt(d)),
            "mask_fill_zero": lambda: _attention(q, k, v, mask, 1 / math.sqrt(d), fill=0.0),
        }
    return variants


def causal_mask_variants(n: int) -> dict:
    ones = torch.ones(n, n, dtype=torch.bool)
    return {
        "causal_mask_off_by_one": ones.tril(-1),
        "causal_mask_upper": ones.triu(),
    }


def _masked_softmax(X, valid_lens, fill, repeat):
    if valid_lens is None:
        return torch.softmax(X, dim=-1)
    if valid_lens.dim() == 1:
        valid_lens = valid_lens.repeat(X.shape[1]) if repeat else valid_lens.repeat_interleave(X.shape[1])
    keep = torch.arange(X.shape[-1], device=X.device) < valid_lens.reshape(-1, 1)
    flat = X.reshape(-1, X.shape[-1]).masked_fill(~keep, fill)
    return torch.softmax(flat.reshape(X.shape), dim=-1)


def masked_softmax_variants(X, valid_lens) -> dict:
    variants = {"masked_logits_zero": lambda: _masked_softmax(X, valid_lens, 0.0, repeat=False)}
    if valid_lens is not None and valid_lens.dim() == 1:
        variants["valid_lens_repeat"] = lambda: _masked_softmax(X, valid_lens, -1e6, repeat=True)
    return variants


def self_attention_variants(module, Q, K, V, mask=None) -> dict:
    """Variants of SelfAttention computed with the weights of ``module`` (the reference)."""
    def project():
        return module.W_q(Q), module.W_k(K), module.W_v(V)

    def scaled(scale):
        q, k, v = project()
        return _attention(q, k, v, mask, scale)

    return {
        "self_attention_unscaled": lambda: scaled(1.0),
        "self_attention_scale_by_input_n": lambda: scaled(1 / math.sqrt(module.W_q.in_features)),
    }


# ---- chapter 2 ---------------------------------------------------------------------------

_ch02_masked_softmax = _masked_softmax  # chapter 1's, bound now so that a later block cannot replace it


def _ch02_split_heads(X, num_heads, permute=True):
    """(batch, n, num_hiddens) -> (batch * h, n, p); without the permute, a bare reshape."""
    batch, n, num_hiddens = X.shape
    p = num_hiddens // num_heads
    if not permute:
        return X.reshape(batch * num_heads, n, p)
    return X.reshape(batch, n, num_heads, p).permute(0, 2, 1, 3).reshape(batch * num_heads, n, p)


def _ch02_merge_heads(X, num_heads, permute=True):
    """(batch * h, n, p) -> (batch, n, h * p); without the permute, a bare reshape."""
    batch_heads, n, p = X.shape
    batch = batch_heads // num_heads
    if not permute:
        return X.reshape(batch, n, num_heads * p)
    return X.reshape(batch, num_heads, n, p).permute(0, 2, 1, 3).reshape(batch, n, num_heads * p)


def transpose_qkv_variants(X, num_heads) -> dict:
    return {"transpose_qkv_no_permute": lambda: _ch02_split_heads(X, num_heads, permute=False)}


def transpose_output_variants(X, num_heads) -> dict:
    return {"transpose_output_mixes_heads": lambda: _ch02_merge_heads(X, num_heads, permute=False)}


def _ch02_mha(module, num_heads, queries, keys, values, valid_lens, scale=None, permute_split=True,
         permute_merge=True, tile_lens=False, swap=False):
    """d2l's MultiHeadAttention with the weights of ``module``, or one of its misconceptions."""
    if swap:
        keys, values = values, keys
    with torch.no_grad():
        q = _ch02_split_heads(module.W_q(queries), num_heads, permute_split)
        k = _ch02_split_heads(module.W_k(keys), num_heads, permute_split)
        v = _ch02_split_heads(module.W_v(values), num_heads, permute_split)
        if valid_lens is not None:
            valid_lens = (valid_lens.repeat(num_heads, *[1] * (valid_lens.dim() - 1)) if tile_lens
                          else valid_lens.repeat_interleave(num_heads, dim=0))
        scores = q @ k.transpose(1, 2) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
        weights = _ch02_masked_softmax(scores, valid_lens, -1e6, repeat=False)
        output = module.W_o(_ch02_merge_heads(weights @ v, num_heads, permute_merge))
    return output, weights


def mha_variants(module, num_heads, queries, keys, values, valid_lens=None) -> dict:
    """Variants of MultiHeadAttention computed with the weights of ``module`` (the reference), in eval mode."""
    def run(**options):
        return lambda: _ch02_mha(module, num_heads, queries, keys, values, valid_lens, **options)

    variants = {
        "scale_by_num_hiddens": run(scale=1 / math.sqrt(module.W_q.out_features)),
        "transpose_output_mixes_heads": run(permute_merge=False),
        "transpose_qkv_no_permute": run(permute_split=False),
    }
    if valid_lens is not None and num_heads > 1:
        variants["heads_valid_lens_repeat"] = run(tile_lens=True)
    if keys.shape[-1] == values.shape[-1]:
        variants["keys_values_swapped"] = run(swap=True)
    return variants


def load_from_torch_variants(make_mha, initial_state, torch_mha, queries, keys, values, valid_lens=None) -> dict:
    """What a d2l layer outputs when loaded from ``torch_mha`` the wrong way.

    ``make_mha()`` builds a fresh reference layer; ``initial_state`` is the learner's layer's state
    before loading, which parameters that were not copied keep.
    """
    E = torch_mha.embed_dim
    blocks = list(torch_mha.in_proj_weight.detach().chunk(3)) + [torch_mha.out_proj.weight.detach()]
    biases = list(torch_mha.in_proj_bias.detach().chunk(3)) + [torch_mha.out_proj.bias.detach()]

    def loaded(transpose=False, copy_biases=True):
        def output():
            layer = make_mha()
            layer.load_state_dict(initial_state)
            with torch.no_grad():
                for linear, weight, bias in zip((layer.W_q, layer.W_k, layer.W_v, layer.W_o), blocks, biases):
                    linear.weight.copy_(weight.T if transpose else weight)
                    if copy_biases:
                        linear.bias.copy_(bias)
                layer.eval()
                return layer(queries, keys, values, valid_lens)
        return output

    assert all(w.shape == (E, E) for w in blocks)
    return {"torch_weights_transposed": loaded(transpose=True),
            "torch_biases_not_copied": loaded(copy_biases=False)}


# ---- chapter 3 ---------------------------------------------------------------------------

def _ch03_normalise(x, gamma, beta, eps, dims, unbiased=False, eps_outside=False):
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
    scale = (var.sqrt() + eps) if eps_outside else (var + eps).sqrt()
    return gamma * (x - mean) / scale + beta


def layer_norm_variants(x, gamma, beta, eps=1e-5) -> dict:
    """What each misconception of layer_norm returns on these inputs."""
    dims = tuple(range(-gamma.dim(), 0))
    variants = {
        "layernorm_unbiased_variance": lambda: _ch03_normalise(x, gamma, beta, eps, dims, unbiased=True),
        "layernorm_eps_outside_sqrt": lambda: _ch03_normalise(x, gamma, beta, eps, dims, eps_outside=True),
    }
    if x.dim() > gamma.dim() and x.shape[0] > 1:
        variants["layernorm_over_batch"] = lambda: _ch03_normalise(x, gamma, beta, eps, (0,))
    if gamma.dim() > 1:
        variants["layernorm_last_axis_only"] = lambda: _ch03_normalise(x, gamma, beta, eps, (-1,))
    return variants


def add_norm_variants(ln, X, Y, drop=None) -> dict:
    """AddNorm's misconceptions with the LayerNorm ``ln`` (the reference's) and the dropout ``drop``.

    ``drop`` applies a dropout mask the grader chose (training mode); None means eval mode, where
    dropout is the identity and dropping out the residual too cannot be told apart.
    """
    same = drop or (lambda t: t)
    variants = {
        "norm_before_add": lambda: X + ln(same(Y)),
        "residual_added_twice": lambda: X + ln(same(Y) + X),
    }
    if drop is not None:
        variants["dropout_on_residual"] = lambda: ln(drop(Y + X))
    return variants


def seed_add_norm_variants(ln, X, Y, drop) -> dict:
    """The seed's AddNorm in training mode, dropout(X + LN(Y)): it drops out the residual."""
    return {"dropout_on_residual": lambda: drop(X + ln(Y))}


def position_wise_ffn_variants(module, X) -> dict:
    """PositionWiseFFN's misconceptions with the weights of ``module`` (the reference)."""
    return {"ffn_no_activation": lambda: module.dense2(module.dense1(X))}


def encoder_block_variants(module, X, valid_lens=None) -> dict:
    """EncoderBlock's misconceptions computed with the submodules of ``module`` (the reference), in eval mode."""
    def run(lens=valid_lens, twice=False, ffn_on_input=False):
        def output():
            with torch.no_grad():
                attention = module.attention(X, X, X, lens)
                Y = module.addnorm1(X, X + attention if twice else attention)
                return module.addnorm2(Y, module.ffn(X if ffn_on_input else Y))
        return output

    variants = {
        "encoder_residual_twice": run(twice=True),
        "encoder_ffn_on_input": run(ffn_on_input=True),
    }
    if valid_lens is not None:
        variants["encoder_valid_lens_ignored"] = run(lens=None)
    return variants


# ---- chapter 6 ---------------------------------------------------------------------------

def _ch06_max_state(module, x, scale, axis=2, permute=True):
    """MaxState's output with the weights of ``module`` (the reference), one thing done wrong.

    ``axis`` is the axis of the running maximum in the (batch, heads, seq, head_size) layout,
    or None for the last axis of the unsplit (batch, seq, hidden_dim) tensor; ``permute=False``
    splits the heads with a reshape alone.
    """
    b, s, hidden = x.shape
    heads, size = module.heads, module.head_size
    skip = module.head1(x)
    z = (module.head0(x) + skip) * scale
    if axis is None:
        m = torch.cummax(z, dim=-1).values
    else:
        z = z.reshape(b, s, heads, size).permute(0, 2, 1, 3) if permute else z.reshape(b, heads, s, size)
        m = torch.cummax(z, dim=axis).values
        m = m.permute(0, 2, 1, 3).reshape(b, s, hidden) if permute else m.reshape(b, s, hidden)
    return (m + module.head2(x)) * m + skip


def max_state_variants(module, x) -> dict:
    """What each misconception of MaxState returns on ``x`` (a call without a state)."""
    scale = module.head_size ** -0.5
    return {
        "cummax_wrong_axis": lambda: _ch06_max_state(module, x, scale, axis=1),      # along the heads
        "cummax_heads_mixed": lambda: _ch06_max_state(module, x, scale, permute=False),
        "max_state_unscaled": lambda: _ch06_max_state(module, x, 1.0),
        "max_state_scaled_by_hidden_dim": lambda: _ch06_max_state(module, x, x.shape[-1] ** -0.5),
    }


def max_state_channel_variants(module, x) -> dict:
    """The other form of a running maximum along the wrong axis: along the channels, without heads."""
    return {"cummax_wrong_axis": lambda: _ch06_max_state(module, x, module.head_size ** -0.5, axis=None)}


def feed_forward_variants(module, x) -> dict:
    return {
        "ffn_relu_on_wrong_branch": lambda: module.ffn2(torch.relu(module.ffn1(x)) * module.gate(x)),
        "ffn_gate_without_relu": lambda: module.ffn2(module.ffn1(x) * module.gate(x)),
    }


def decoder_layer_variants(module, x, state=None) -> dict:
    """Variants of DecoderLayer with the weights of ``module`` (the reference)."""
    def mixed(branch, swap=False):
        a = module.alpha
        return module.layer_norm((1 - a) * module.ffn(branch) + a * x if swap else a * module.ffn(branch) + (1 - a) * x)

    return {
        "alpha_on_wrong_branch": lambda: mixed(module.self_attention(x, state)[0], swap=True),
        "decoder_layer_skips_max_state": lambda: mixed(x),
    }


def sam_out_variants(module, tokens) -> dict:
    """Variants of SamOut's logits with the weights of ``module`` (the reference), without a state."""
    def without_residual():
        x = module.em(tokens)
        for layer in module.decoder_layers:
            x = layer(x)[0]
        return x @ module.em.weight.T

    return {"samout_residual_missing": without_residual}


# ---- chapter 4 ---------------------------------------------------------------------------

def drop_path_variants(x, kept, drop_prob) -> dict:
    """What a wrongly scaled drop_path returns for the samples it kept (``kept``: (batch,) bool)."""
    mask = kept.to(x.dtype).reshape((x.shape[0],) + (1,) * (x.dim() - 1))
    return {
        "drop_path_no_rescale": lambda: x * mask,
        "drop_path_rescale_by_drop_prob": lambda: x * mask / drop_prob,
    }


def mlp_variants(mlp, x, seed=None) -> dict:
    """Variants of Mlp computed with the weights of ``mlp`` (the reference); with ``seed``, in
    training mode from that seed, as the reference's own dropout draws would be."""
    def seeded(forward):
        def run():
            if seed is not None:
                torch.manual_seed(seed)
            return forward()
        return run

    variants = {
        "mlp_act_layer_ignored": seeded(lambda: mlp.drop2(mlp.fc2(mlp.drop1(torch.nn.functional.gelu(mlp.fc1(x)))))),
    }
    if seed is not None:
        variants["mlp_dropout_before_activation"] = seeded(
            lambda: mlp.drop2(mlp.fc2(mlp.act(mlp.drop1(mlp.fc1(x))))))
    return variants


def _ch04_attention(attn, x, layout="timm", scale=None):
    B, N, C = x.shape
    heads, head_dim = attn.num_heads, C // attn.num_heads
    qkv = attn.qkv(x)
    if layout == "timm":
        q, k, v = qkv.reshape(B, N, 3, heads, head_dim).permute(2, 0, 3, 1, 4)
    else:  # heads first: the channels read as (heads, 3, head_dim)
        q, k, v = qkv.reshape(B, N, heads, 3, head_dim).permute(3, 0, 2, 1, 4)
    weights = (q @ k.transpose(-2, -1) * (scale if scale is not None else head_dim ** -0.5)).softmax(dim=-1)
    return attn.proj((weights @ v).transpose(1, 2).reshape(B, N, C))


def attention_variants(attn, x) -> dict:
    """Variants of timm's Attention computed with the weights of ``attn`` (eval mode, no dropout)."""
    return {
        "qkv_wrong_slices": lambda: _ch04_attention(attn, x, layout="heads_first"),
        "attention_scale_by_dim": lambda: _ch04_attention(attn, x, scale=x.shape[-1] ** -0.5),
    }


def block_variants(block, x) -> dict:
    """Variants of the ViT Block computed with the submodules of ``block`` (eval mode)."""
    def post_norm():
        y = block.norm1(x + block.attn(x))
        return block.norm2(y + block.mlp(y))

    def parallel():
        return x + block.attn(block.norm1(x)) + block.mlp(block.norm2(x))

    return {"block_post_norm": post_norm, "block_parallel_branches": parallel}


def block_dropout_variants(block, x, seed) -> dict:
    """The Block in training mode from ``seed`` with drop and attn_drop swapped in the attention."""
    def swapped():
        attn_p, proj_p = block.attn.attn_drop.p, block.attn.proj_drop.p
        block.attn.attn_drop.p, block.attn.proj_drop.p = proj_p, attn_p
        try:
            torch.manual_seed(seed)
            return block(x)
        finally:
            block.attn.attn_drop.p, block.attn.proj_drop.p = attn_p, proj_p

    return {"block_dropout_rates_swapped": swapped}


# ---- chapter 5 ---------------------------------------------------------------------------

def _ch05_table(max_len, num_hiddens, interleaved=True):
    positions = torch.arange(max_len, dtype=torch.float64)[:, None]
    angles = positions / 10000 ** (torch.arange(0, num_hiddens, 2, dtype=torch.float64) / num_hiddens)
    if interleaved:
        table = torch.zeros(max_len, num_hiddens, dtype=torch.float64)
        table[:, 0::2], table[:, 1::2] = torch.sin(angles), torch.cos(angles)
        return table
    return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)


def positional_encoding_variants(X, offset=0) -> dict:
    """What a wrong positional encoding adds to X (eval mode) at positions offset, offset + 1, ..."""
    n, d = X.shape[1], X.shape[2]
    return {
        "pe_not_interleaved": lambda: X + _ch05_table(offset + n, d, interleaved=False)[offset:].to(X.dtype),
        "pe_offset_ignored": lambda: X + _ch05_table(n, d).to(X.dtype),
    }


def _ch05_block(block, X, state, causal=True, queries_from_encoder=False, use_enc_valid_lens=True, swap=False):
    """One training-mode pass of d2l's DecoderBlock with ``block``'s sublayers, with a bug switched on."""
    enc_outputs, enc_valid_lens = state[0], state[1]
    batch, num_steps, _ = X.shape
    dec_valid_lens = torch.arange(1, num_steps + 1, device=X.device).repeat(batch, 1) if causal else None

    def add_norm(module, residual, sublayer):
        return module(sublayer, residual) if swap else module(residual, sublayer)

    Y = add_norm(block.addnorm1, X, block.attention1(X, X, X, dec_valid_lens))
    lens = enc_valid_lens if use_enc_valid_lens else None
    if queries_from_encoder:
        Y2 = block.attention2(enc_outputs, Y, Y, lens)
    else:
        Y2 = block.attention2(Y, enc_outputs, enc_outputs, lens)
    Z = add_norm(block.addnorm2, Y, Y2)
    return add_norm(block.addnorm3, Z, block.ffn(Z))


def decoder_block_variants(block, X, state) -> dict:
    """Training-mode variants of DecoderBlock computed with the sublayers of ``block`` (dropout 0)."""
    variants = {
        "decoder_no_causal_mask": lambda: _ch05_block(block, X, state, causal=False),
        "decoder_enc_valid_lens_ignored": lambda: _ch05_block(block, X, state, use_enc_valid_lens=False),
    }
    if state[0].shape[1] == X.shape[1]:  # queries from the encoder only fit when both have the same length
        variants["cross_attention_queries_encoder"] = lambda: _ch05_block(block, X, state, queries_from_encoder=True)
    return variants


def decoder_block_dropout_variants(block, X, state, seed) -> dict:
    """The training pass from ``seed`` with AddNorm's arguments swapped (dropout on the residual)."""
    def swapped():
        torch.manual_seed(seed)
        return _ch05_block(block, X, state, swap=True)

    return {"addnorm_arguments_swapped": swapped}


def transformer_decoder_variants(decoder, tokens, state) -> dict:
    """Training-pass variants of TransformerDecoder computed with the modules of ``decoder``."""
    def unscaled():
        X = decoder.pos_encoding(decoder.embedding(tokens))
        fresh = [state[0], state[1], [None] * len(decoder.blks)]
        for block in decoder.blks:
            X, fresh = block(X, fresh)
        return decoder.dense(X)

    return {"decoder_embedding_unscaled": unscaled}


def cached_decoding_variants(decoder, tokens, enc_outputs, enc_valid_lens) -> dict:
    """Step-by-step (eval) decoding with d2l's forward: the positional encoding always from position 0."""
    def without_offset():
        state = [enc_outputs, enc_valid_lens, [None] * len(decoder.blks)]
        steps = []
        for t in range(tokens.shape[1]):
            X = decoder.pos_encoding(decoder.embedding(tokens[:, t:t + 1]) * math.sqrt(decoder.num_hiddens))
            for block in decoder.blks:
                X, state = block(X, state)
            steps.append(decoder.dense(X))
        return torch.cat(steps, dim=1)

    return {"decoder_position_offset_missing": without_offset}
