"""Chapter 4's known misconceptions, implemented: what each would return on a grader's inputs.

Each ``*_variants`` function maps a misconception id (see misconceptions.py) to that value,
or to a function computing it; ``probes.check_close`` names the one the learner's value matches.
"""

from __future__ import annotations

import torch


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


def _attention(attn, x, layout="timm", scale=None):
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
        "qkv_wrong_slices": lambda: _attention(attn, x, layout="heads_first"),
        "attention_scale_by_dim": lambda: _attention(attn, x, scale=x.shape[-1] ** -0.5),
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
