"""Buggy submissions of chapter 1, self-attention."""

from mutants import Mutant

CHAPTER = "01_self_attention"
SDPA, CAUSAL, SOFTMAX, SELF = ("ex01_scaled_dot_product_attention", "ex01_causal_mask",
                               "ex01_masked_softmax", "ex01_self_attention")
SCORES = "scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])"
MASK_SCORES = 'scores = scores.masked_fill(~mask, float("-inf"))'
MASK_WEIGHTS = "weights = weights.masked_fill(~mask, 0.0)"
CAUSAL_LINE = "return torch.ones(n, n, dtype=torch.bool, device=device).tril()"
SELF_FORWARD = ("output, self.attention_weights = scaled_dot_product_attention("
                "self.W_q(Q), self.W_k(K), self.W_v(V), mask)")


def inline_self_attention(scale: str) -> str:
    """SelfAttention.forward written out by hand, as a learner who skips the helper would."""
    return "\n        ".join([
        "q, k, v = self.W_q(Q), self.W_k(K), self.W_v(V)",
        f"scores = q @ k.transpose(-2, -1){scale}",
        "if mask is not None:",
        '    scores = scores.masked_fill(~mask, float("-inf"))',
        "self.attention_weights = torch.softmax(scores, dim=-1)",
        "output = self.attention_weights @ v",
    ])


MUTANTS = [
    Mutant("no_scaling", CHAPTER, ((SCORES, "scores = q @ k.transpose(-2, -1)"),), {SDPA: 3}),
    Mutant("scale_by_d", CHAPTER, ((SCORES, "scores = q @ k.transpose(-2, -1) / q.shape[-1]"),), {SDPA: 3}),
    Mutant("softmax_over_queries", CHAPTER,
           (("torch.softmax(scores, dim=-1)                      # over the keys",
             "torch.softmax(scores, dim=-2)"),), {SDPA: 4}),
    Mutant("mask_inverted", CHAPTER,
           ((MASK_SCORES, 'scores = scores.masked_fill(mask, float("-inf"))'),
            (MASK_WEIGHTS, "weights = weights.masked_fill(mask, 0.0)")), {SDPA: 4}),
    Mutant("mask_after_softmax", CHAPTER, ((MASK_SCORES, "pass"),), {SDPA: 4}),
    Mutant("mask_ignored", CHAPTER, ((MASK_SCORES, "pass"), (MASK_WEIGHTS, "pass")), {SDPA: 4}),
    Mutant("mask_fill_zero", CHAPTER, ((MASK_SCORES, "scores = scores.masked_fill(~mask, 0.0)"),), {SDPA: 4}),
    Mutant("causal_mask_off_by_one", CHAPTER, ((CAUSAL_LINE, CAUSAL_LINE.replace("tril()", "tril(-1)")),),
           {CAUSAL: 1}),
    Mutant("causal_mask_upper", CHAPTER, ((CAUSAL_LINE, CAUSAL_LINE.replace("tril()", "triu()")),), {CAUSAL: 1}),
    Mutant("valid_lens_repeat", CHAPTER,
           (("valid_lens = valid_lens.repeat_interleave(n_q)", "valid_lens = valid_lens.repeat(n_q)"),),
           {SOFTMAX: 1}),
    Mutant("masked_logits_zero", CHAPTER,
           (("X.masked_fill(~keep, -1e6)", "X.masked_fill(~keep, 0.0)"),), {SOFTMAX: 2}),
    Mutant("self_attention_unscaled", CHAPTER, ((SELF_FORWARD, inline_self_attention("")),), {SELF: 1.5}),
    Mutant("self_attention_scale_by_input_n", CHAPTER,
           ((SELF_FORWARD, inline_self_attention(" / math.sqrt(Q.shape[-1])")),), {SELF: 1.5}),
]
