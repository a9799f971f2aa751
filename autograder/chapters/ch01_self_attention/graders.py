"""Hidden graders of chapter 1, self-attention (solutions/01_self_attention.ipynb).

Each test is one check of one exercise, worth the points of its marker. Reference values
are computed on clones before the learner's code sees any input.
"""

import pytest
import torch

from autograder.probes import (CheckFailed, build_pair, call_learner, check_close, check_gradients, clones, diagnose,
                               normal, randn, random_mask)
from .variants import causal_mask_variants, masked_softmax_variants, sdpa_variants, self_attention_variants

SDPA = "ex01_scaled_dot_product_attention"
CAUSAL = "ex01_causal_mask"
MASKED_SOFTMAX = "ex01_masked_softmax"
SELF_ATTENTION = "ex01_self_attention"

# (batch dims, n_q, n_k, d, d_v): no batch, one and two batch dims; n_q != n_k, d != d_v.
SHAPES = [((), 3, 3, 2, 2), ((2,), 4, 6, 8, 5), ((2, 3), 5, 7, 16, 3), ((1,), 1, 9, 64, 4)]


def attention_inputs(shape, seed, dtype=torch.float64, masked=False):
    batch, n_q, n_k, d, d_v = shape
    q = randn(*batch, n_q, d, seed=seed, dtype=dtype) * 2
    k = randn(*batch, n_k, d, seed=seed + 1, dtype=dtype) * 2
    v = randn(*batch, n_k, d_v, seed=seed + 2, dtype=dtype)
    mask = random_mask(*batch, n_q, n_k, seed=seed + 3) if masked else None
    return q, k, v, mask


def call_sdpa(function, q, k, v, mask):
    result = call_learner(function, q, k, v, mask, what="scaled_dot_product_attention(q, k, v, mask)")
    if not (isinstance(result, tuple) and len(result) == 2):
        raise CheckFailed("scaled_dot_product_attention must return a pair (output, weights)")
    return result


# ---- ex01_scaled_dot_product_attention --------------------------------------------------

@pytest.mark.exercise(SDPA, points=1)
@pytest.mark.parametrize("masked", [False, True], ids=["no mask", "random mask"])
def test_output_and_weights_match_reference(scaled_dot_product_attention, reference, masked):
    for seed, shape in enumerate(SHAPES):
        q, k, v, mask = attention_inputs(shape, 10 * seed, masked=masked)
        expected_out, expected_w = reference.scaled_dot_product_attention(*clones(q, k, v), mask)
        out, weights = call_sdpa(scaled_dot_product_attention, *clones(q, k, v), mask)
        variants = sdpa_variants(q, k, v, mask)
        check_close(weights, expected_w, f"weights for q{tuple(q.shape)}, k{tuple(k.shape)}",
                    {m: (lambda f=f: f()[1]) for m, f in variants.items()})
        check_close(out, expected_out, f"output for q{tuple(q.shape)}, k{tuple(k.shape)}, v{tuple(v.shape)}",
                    variants)


@pytest.mark.exercise(SDPA, points=1)
def test_gradients_match_reference(scaled_dot_product_attention, reference):
    shape = ((2,), 4, 6, 8, 5)
    q, k, v, mask = attention_inputs(shape, 7, masked=True)
    mask[0, 1] = False  # one query with every key masked: its gradient must be zero, not NaN
    upstream = randn(2, 4, 5, seed=99)
    expected = clones(q, k, v, requires_grad=True)
    (reference.scaled_dot_product_attention(*expected, mask)[0] * upstream).sum().backward()
    actual = clones(q, k, v, requires_grad=True)
    out, _ = call_sdpa(scaled_dot_product_attention, *actual, mask)
    check_close(out, reference.scaled_dot_product_attention(q, k, v, mask)[0], "output",
                sdpa_variants(q, k, v, mask))
    call_learner(lambda: (out * upstream).sum().backward(), what="backward through your output")
    check_gradients("scaled_dot_product_attention", zip("qkv", actual, expected))


@pytest.mark.exercise(SDPA, points=1)
def test_masked_keys_get_zero_weight_and_rows_sum_to_one(scaled_dot_product_attention):
    q, k, v, mask = attention_inputs(((3,), 5, 7, 4, 2), 21, masked=True)
    mask[1, 2] = False  # a fully masked query row
    mask[2, :, 0] = True  # and rows with at least one key
    out, weights = call_sdpa(scaled_dot_product_attention, q, k, v, mask)
    variants = {m: (lambda f=f: f()[1]) for m, f in sdpa_variants(q, k, v, mask).items()}
    if torch.isnan(out).any() or torch.isnan(weights).any():
        raise CheckFailed("a query whose keys are all masked must get zero weights and a zero output, not NaN")
    if (weights[~mask] != 0).any():
        raise CheckFailed("masked keys (mask False) must get exactly zero weight", diagnose(weights, variants))
    if (weights[1, 2] != 0).any() or (out[1, 2] != 0).any():
        raise CheckFailed("a query whose keys are all masked must get zero weights and a zero output")
    rows = mask.any(-1)
    sums = weights.sum(-1)[rows]
    if not torch.allclose(sums, torch.ones_like(sums)):
        raise CheckFailed("each query's weights over the keys it may attend to must sum to one",
                          diagnose(weights, variants))


@pytest.mark.exercise(SDPA, points=1)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16], ids=str)
def test_follows_dtype_and_is_causal(scaled_dot_product_attention, reference, dtype):
    n = 6
    q, k, v, _ = attention_inputs(((2,), n, n, 8, 3), 5, dtype=dtype)
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    out, weights = call_sdpa(scaled_dot_product_attention, q, k, v, causal)
    expected_out, _ = reference.scaled_dot_product_attention(*clones(q, k, v), causal)
    if out.dtype != dtype or weights.dtype != dtype:
        raise CheckFailed(f"for {dtype} inputs the output and weights must be {dtype}, got {out.dtype}, {weights.dtype}")
    if out.device != q.device:
        raise CheckFailed("the output must be on the inputs' device")
    check_close(out, expected_out, f"output in {dtype} with a causal mask", sdpa_variants(q, k, v, causal))
    # Changing the future (keys and values after position t) must not change outputs up to t.
    t = 2
    k2, v2 = k.clone(), v.clone()
    k2[:, t + 1:] += 5
    v2[:, t + 1:] -= 5
    out2, _ = call_sdpa(scaled_dot_product_attention, q, k2, v2, causal)
    if not torch.equal(out2[:, : t + 1], out[:, : t + 1]):
        raise CheckFailed("with a causal mask, changing later keys and values changed earlier outputs")


# ---- ex01_causal_mask ---------------------------------------------------------------------

@pytest.mark.exercise(CAUSAL, points=1)
def test_true_on_and_below_the_diagonal(causal_mask):
    for n in [1, 2, 5, 8]:
        mask = call_learner(causal_mask, n, what=f"causal_mask({n})")
        expected = torch.ones(n, n, dtype=torch.bool).tril()
        if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
            raise CheckFailed(f"causal_mask({n}) must return a bool tensor, got {getattr(mask, 'dtype', type(mask))}")
        check_close(mask.to(torch.float64), expected.to(torch.float64), f"causal_mask({n})",
                    {m: v.double() for m, v in causal_mask_variants(n).items()})
    devices = ["cpu", torch.device("cpu")] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        mask = call_learner(causal_mask, 3, device=device, what=f"causal_mask(3, device={device!r})")
        if mask.device.type != torch.device(device).type:
            raise CheckFailed(f"causal_mask(n, device={device!r}) must build the mask on that device")


# ---- ex01_masked_softmax -------------------------------------------------------------------

MASKED_SOFTMAX_CASES = {
    "none": None,
    "1-D": torch.tensor([2, 5, 1]),
    "2-D": torch.tensor([[1, 2, 3, 4], [5, 5, 5, 5], [3, 1, 4, 1]]),
}


@pytest.mark.exercise(MASKED_SOFTMAX, points=1)
@pytest.mark.parametrize("case", list(MASKED_SOFTMAX_CASES))
def test_masked_softmax_matches_reference(masked_softmax, reference, case):
    valid_lens = MASKED_SOFTMAX_CASES[case]
    X = randn(3, 4, 5, seed=3) * 3
    expected = reference.masked_softmax(X.clone(), None if valid_lens is None else valid_lens.clone())
    actual = call_learner(masked_softmax, X.clone(), None if valid_lens is None else valid_lens.clone(),
                          what=f"masked_softmax(X, {case} valid_lens)")
    check_close(actual, expected, f"masked_softmax with {case} valid_lens",
                masked_softmax_variants(X, valid_lens))


@pytest.mark.exercise(MASKED_SOFTMAX, points=1)
def test_masked_softmax_zero_beyond_valid_length(masked_softmax):
    X = randn(2, 3, 6, seed=8, dtype=torch.float32)
    valid_lens = torch.tensor([[1, 4, 6], [2, 2, 3]])
    weights = call_learner(masked_softmax, X, valid_lens, what="masked_softmax(X, 2-D valid_lens)")
    if not isinstance(weights, torch.Tensor) or weights.shape != X.shape or weights.dtype != X.dtype:
        raise CheckFailed("masked_softmax must return weights of X's shape and dtype")
    beyond = torch.arange(6) >= valid_lens.unsqueeze(-1)
    if not torch.all(weights[beyond] < 1e-6):
        raise CheckFailed("positions at or beyond a row's valid length must get (almost) zero weight",
                          "masked_logits_zero")
    if not torch.allclose(weights.sum(-1), torch.ones(2, 3)):
        raise CheckFailed("each row of weights must sum to one")


# ---- ex01_self_attention --------------------------------------------------------------------

def attention_module_inputs(seed, dtype=torch.float64, input_n=6, n_q=4, n_k=5):
    Q = randn(2, n_q, input_n, seed=seed, dtype=dtype)
    K = randn(2, n_k, input_n, seed=seed + 1, dtype=dtype)
    V = randn(2, n_k, input_n, seed=seed + 2, dtype=dtype)
    return Q, K, V


@pytest.mark.exercise(SELF_ATTENTION, points=0.5)
def test_parameters_are_three_linear_projections(SelfAttention):
    module = call_learner(SelfAttention, 6, 10, what="SelfAttention(6, 10)")
    for name in ["W_q", "W_k", "W_v"]:
        layer = getattr(module, name, None)
        if not isinstance(layer, torch.nn.Linear):
            raise CheckFailed(f"SelfAttention.{name} must be an nn.Linear, got {type(layer).__name__}")
        if (layer.in_features, layer.out_features) != (6, 10) or layer.bias is None:
            raise CheckFailed(f"SelfAttention.{name} must be nn.Linear(input_n, hidden_n) with a bias")
    keys = sorted(module.state_dict())
    expected = sorted(f"{n}.{p}" for n in ["W_q", "W_k", "W_v"] for p in ["weight", "bias"])
    if keys != expected:
        raise CheckFailed(f"SelfAttention's parameters must be exactly {expected}, got {keys}")


@pytest.mark.exercise(SELF_ATTENTION, points=1.5)
@pytest.mark.parametrize("masked", [False, True], ids=["no mask", "random mask"])
def test_cross_attention_matches_reference(SelfAttention, reference, masked):
    module, ref = build_pair(SelfAttention, reference.SelfAttention, 6, 10, what="SelfAttention(6, 10)", seed=100,
                             draw=normal(1.0))
    Q, K, V = attention_module_inputs(31)
    mask = random_mask(2, 4, 5, seed=4) if masked else None
    expected_in = clones(Q, K, V, requires_grad=True)
    expected = ref(*expected_in, mask)
    expected.sum().backward()
    actual_in = clones(Q, K, V, requires_grad=True)
    out = call_learner(module, *actual_in, mask, what="SelfAttention.forward(Q, K, V, mask)")
    check_close(out, expected, "SelfAttention output (queries, keys and values all different)",
                self_attention_variants(ref, Q, K, V, mask))
    check_close(getattr(module, "attention_weights", None), ref.attention_weights,
                "SelfAttention.attention_weights after forward")
    call_learner(lambda: out.sum().backward(), what="backward through SelfAttention")
    check_gradients("SelfAttention", zip("QKV", actual_in, expected_in), module, ref)


@pytest.mark.exercise(SELF_ATTENTION, points=1)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_causal_self_attention_ignores_the_future(SelfAttention, dtype):
    n, input_n, hidden_n = 6, 4, 8
    module = call_learner(SelfAttention, input_n, hidden_n, what=f"SelfAttention({input_n}, {hidden_n})")
    module = module.to(dtype)
    X = randn(2, n, input_n, seed=12, dtype=dtype)
    causal = torch.ones(n, n, dtype=torch.bool).tril()
    with torch.no_grad():
        out = call_learner(module, X, X, X, causal, what="SelfAttention.forward(X, X, X, causal mask)")
        if out.dtype != dtype or out.shape != (2, n, hidden_n):
            raise CheckFailed(f"expected a {dtype} output of shape (2, {n}, {hidden_n}), got {tuple(out.shape)} {out.dtype}")
        X2 = X.clone()
        X2[:, 3:] = randn(2, n - 3, input_n, seed=13, dtype=dtype)
        out2 = module(X2, X2, X2, causal)
    if not torch.allclose(out2[:, :3], out[:, :3]):
        raise CheckFailed("with a causal mask, changing tokens 3.. changed the outputs at positions 0..2")
    if torch.allclose(out2[:, 3:], out[:, 3:]):
        raise CheckFailed("changing tokens 3.. should change the outputs at those positions")
