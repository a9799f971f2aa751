"""Chapter 1's known misconceptions, implemented: what each would return on a grader's inputs.

Each ``*_variants`` function maps a misconception id (see misconceptions.py) to that value,
or to a function computing it; ``probes.check_close`` names the one the learner's value matches.
"""

from __future__ import annotations

import math

import torch


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


def masked_softmax_with(X, valid_lens, fill, repeat):
    """d2l's masked_softmax with its fill value and its 1-D lengths' expansion as switches (chapter 2 uses it too)."""
    if valid_lens is None:
        return torch.softmax(X, dim=-1)
    if valid_lens.dim() == 1:
        valid_lens = valid_lens.repeat(X.shape[1]) if repeat else valid_lens.repeat_interleave(X.shape[1])
    keep = torch.arange(X.shape[-1], device=X.device) < valid_lens.reshape(-1, 1)
    flat = X.reshape(-1, X.shape[-1]).masked_fill(~keep, fill)
    return torch.softmax(flat.reshape(X.shape), dim=-1)


def masked_softmax_variants(X, valid_lens) -> dict:
    variants = {"masked_logits_zero": lambda: masked_softmax_with(X, valid_lens, 0.0, repeat=False)}
    if valid_lens is not None and valid_lens.dim() == 1:
        variants["valid_lens_repeat"] = lambda: masked_softmax_with(X, valid_lens, -1e6, repeat=True)
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
