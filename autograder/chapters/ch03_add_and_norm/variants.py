"""Chapter 3's known misconceptions, implemented: what each would return on a grader's inputs.

Each ``*_variants`` function maps a misconception id (see misconceptions.py) to that value,
or to a function computing it; ``probes.check_close`` names the one the learner's value matches.
"""

from __future__ import annotations

import torch


def _normalise(x, gamma, beta, eps, dims, unbiased=False, eps_outside=False):
    mean = x.mean(dim=dims, keepdim=True)
    var = x.var(dim=dims, keepdim=True, unbiased=unbiased)
    scale = (var.sqrt() + eps) if eps_outside else (var + eps).sqrt()
    return gamma * (x - mean) / scale + beta


def layer_norm_variants(x, gamma, beta, eps=1e-5) -> dict:
    """What each misconception of layer_norm returns on these inputs."""
    dims = tuple(range(-gamma.dim(), 0))
    variants = {
        "layernorm_unbiased_variance": lambda: _normalise(x, gamma, beta, eps, dims, unbiased=True),
        "layernorm_eps_outside_sqrt": lambda: _normalise(x, gamma, beta, eps, dims, eps_outside=True),
    }
    if x.dim() > gamma.dim() and x.shape[0] > 1:
        variants["layernorm_over_batch"] = lambda: _normalise(x, gamma, beta, eps, (0,))
    if gamma.dim() > 1:
        variants["layernorm_last_axis_only"] = lambda: _normalise(x, gamma, beta, eps, (-1,))
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
