"""Chapter 5's known misconceptions, implemented: what each would return on a grader's inputs.

Each ``*_variants`` function maps a misconception id (see misconceptions.py) to that value,
or to a function computing it; ``probes.check_close`` names the one the learner's value matches.
"""

from __future__ import annotations

import math

import torch


def table(max_len, num_hiddens, interleaved=True):
    """The sine-cosine positional encodings of positions 0..max_len - 1, (max_len, num_hiddens), float64:
    interleaved as d2l's (sin, cos, sin, ...), or all sines then all cosines."""
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
        "pe_not_interleaved": lambda: X + table(offset + n, d, interleaved=False)[offset:].to(X.dtype),
        "pe_offset_ignored": lambda: X + table(n, d).to(X.dtype),
    }


def _block(block, X, state, causal=True, queries_from_encoder=False, use_enc_valid_lens=True, swap=False):
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
        "decoder_no_causal_mask": lambda: _block(block, X, state, causal=False),
        "decoder_enc_valid_lens_ignored": lambda: _block(block, X, state, use_enc_valid_lens=False),
    }
    if state[0].shape[1] == X.shape[1]:  # queries from the encoder only fit when both have the same length
        variants["cross_attention_queries_encoder"] = lambda: _block(block, X, state, queries_from_encoder=True)
    return variants


def decoder_block_dropout_variants(block, X, state, seed) -> dict:
    """The training pass from ``seed`` with AddNorm's arguments swapped (dropout on the residual)."""
    def swapped():
        torch.manual_seed(seed)
        return _block(block, X, state, swap=True)

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
