"""Chapter 2's known misconceptions, implemented: what each would return on a grader's inputs.

Each ``*_variants`` function maps a misconception id (see misconceptions.py) to that value,
or to a function computing it; ``probes.check_close`` names the one the learner's value matches.
"""

from __future__ import annotations

import math

import torch

from autograder.chapters.ch01_self_attention.variants import masked_softmax_with


def _split_heads(X, num_heads, permute=True):
    """(batch, n, num_hiddens) -> (batch * h, n, p); without the permute, a bare reshape."""
    batch, n, num_hiddens = X.shape
    p = num_hiddens // num_heads
    if not permute:
        return X.reshape(batch * num_heads, n, p)
    return X.reshape(batch, n, num_heads, p).permute(0, 2, 1, 3).reshape(batch * num_heads, n, p)


def _merge_heads(X, num_heads, permute=True):
    """(batch * h, n, p) -> (batch, n, h * p); without the permute, a bare reshape."""
    batch_heads, n, p = X.shape
    batch = batch_heads // num_heads
    if not permute:
        return X.reshape(batch, n, num_heads * p)
    return X.reshape(batch, num_heads, n, p).permute(0, 2, 1, 3).reshape(batch, n, num_heads * p)


def transpose_qkv_variants(X, num_heads) -> dict:
    return {"transpose_qkv_no_permute": lambda: _split_heads(X, num_heads, permute=False)}


def transpose_output_variants(X, num_heads) -> dict:
    return {"transpose_output_mixes_heads": lambda: _merge_heads(X, num_heads, permute=False)}


def _mha(module, num_heads, queries, keys, values, valid_lens, scale=None, permute_split=True,
         permute_merge=True, tile_lens=False, swap=False):
    """d2l's MultiHeadAttention with the weights of ``module``, or one of its misconceptions."""
    if swap:
        keys, values = values, keys
    with torch.no_grad():
        q = _split_heads(module.W_q(queries), num_heads, permute_split)
        k = _split_heads(module.W_k(keys), num_heads, permute_split)
        v = _split_heads(module.W_v(values), num_heads, permute_split)
        if valid_lens is not None:
            valid_lens = (valid_lens.repeat(num_heads, *[1] * (valid_lens.dim() - 1)) if tile_lens
                          else valid_lens.repeat_interleave(num_heads, dim=0))
        scores = q @ k.transpose(1, 2) * (scale if scale is not None else 1 / math.sqrt(q.shape[-1]))
        weights = masked_softmax_with(scores, valid_lens, -1e6, repeat=False)
        output = module.W_o(_merge_heads(weights @ v, num_heads, permute_merge))
    return output, weights


def mha_variants(module, num_heads, queries, keys, values, valid_lens=None) -> dict:
    """Variants of MultiHeadAttention computed with the weights of ``module`` (the reference), in eval mode."""
    def run(**options):
        return lambda: _mha(module, num_heads, queries, keys, values, valid_lens, **options)

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
