"""Chapter 6's known misconceptions, implemented: what each would return on a grader's inputs.

Each ``*_variants`` function maps a misconception id (see misconceptions.py) to that value,
or to a function computing it; ``probes.check_close`` names the one the learner's value matches.
"""

from __future__ import annotations

import torch


def _max_state(module, x, scale, axis=2, permute=True):
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
        "cummax_wrong_axis": [lambda: _max_state(module, x, scale, axis=1),      # along the heads
                              lambda: _max_state(module, x, scale, axis=None)],  # along the channels, without heads
        "cummax_heads_mixed": lambda: _max_state(module, x, scale, permute=False),
        "max_state_unscaled": lambda: _max_state(module, x, 1.0),
        "max_state_scaled_by_hidden_dim": lambda: _max_state(module, x, x.shape[-1] ** -0.5),
    }


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
