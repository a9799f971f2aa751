"""Hidden graders of chapter 4, a Vision Transformer block (solutions/04_vit_block.ipynb).

Each test is one check of one exercise, worth the points of its marker. Reference values are
computed on clones before the learner's code sees any input. The random parts (drop_path,
dropout) are checked statistically from a fixed seed, with binomial tolerances that a wrong
rate or scale cannot pass, or, where the reference defines the order of the random draws
(Mlp, Block), by equality with the reference run from the same seed.

timm cannot be imported here (it needs torchvision), so its Block is represented by its
state_dict layout (the keys and shapes of timm 1.0's vision_transformer.Block) and by its
forward pass written out with torch.nn.functional from timm's source.
"""

from functools import partial
import math

import pytest
import torch
import torch.nn.functional as F

from autograder.probes import (CheckFailed, build_pair, call_learner, check_close, check_gradients, clones, generator,
                               load_state, randn, randomise)
from .variants import (attention_variants, block_dropout_variants, block_variants,
                       drop_path_variants, mlp_variants)

DROP_PATH = "ex04_drop_path"
DROP_PATH_MODULE = "ex04_drop_path_module"
MLP = "ex04_mlp"
ATTENTION = "ex04_attention"
BLOCK = "ex04_block"


def positive(*shape, seed, dtype=torch.float64):
    """Inputs in [0.5, 1.5): never zero, so a zero in the output means a dropped sample."""
    return (torch.rand(*shape, generator=generator(seed), dtype=torch.float64) + 0.5).to(dtype)


def binomial_tolerance(p, n, sigmas=5.0):
    return sigmas * math.sqrt(p * (1 - p) / n)


def kept_samples(out, what):
    """The (batch,) mask of the samples an output kept; fails unless each sample is all kept or all dropped."""
    if not isinstance(out, torch.Tensor):
        raise CheckFailed(f"{what} must return a tensor, got {type(out).__name__}")
    nonzero = (out != 0).flatten(1)
    kept, touched = nonzero.all(dim=1), nonzero.any(dim=1)
    if (kept != touched).any():
        share = (kept != touched).double().mean().item()
        raise CheckFailed(f"{what}: {share:.0%} of the samples are partly zeroed; each sample must be kept or "
                          "dropped as a whole (one draw per sample, on the first dimension)", "drop_path_per_element")
    return kept


def call_drop_path(drop_path, x, *args, **kwargs):
    out = call_learner(drop_path, x, *args, what="drop_path(x, drop_prob, training, scale_by_keep)", **kwargs)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        raise CheckFailed(f"drop_path must return a tensor of x's shape {tuple(x.shape)}, got "
                          f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
    return out


# ---- ex04_drop_path -------------------------------------------------------------------------

@pytest.mark.exercise(DROP_PATH, points=0.5)
def test_each_sample_is_kept_or_dropped_whole(drop_path):
    for seed, shape in enumerate([(4000, 3, 5), (4000, 7), (600, 2, 3, 4)]):
        x = positive(*shape, seed=seed)
        torch.manual_seed(100 + seed)
        out = call_drop_path(drop_path, x.clone(), 0.4, True)
        kept = kept_samples(out, f"drop_path on an input of shape {shape}")
        if kept.all() or not kept.any():
            raise CheckFailed(f"drop_path(x, 0.4, training=True) on {shape[0]} samples kept "
                              f"{'all' if kept.all() else 'none'} of them")


@pytest.mark.exercise(DROP_PATH, points=2)
@pytest.mark.parametrize("drop_prob", [0.3, 0.8])
def test_keep_rate_is_one_minus_drop_prob_and_the_mean_is_kept(drop_path, drop_prob):
    n = 20_000
    x = positive(n, 2, 3, seed=7)
    torch.manual_seed(11)
    out = call_drop_path(drop_path, x.clone(), drop_prob, True)
    kept = kept_samples(out, "drop_path")
    rate, tolerance = kept.double().mean().item(), binomial_tolerance(drop_prob, n)
    if abs(rate - (1 - drop_prob)) > tolerance:
        swapped = "drop_path_keep_prob_swapped" if abs(rate - drop_prob) <= tolerance else None
        raise CheckFailed(f"with drop_prob={drop_prob}, {rate:.1%} of {n} samples were kept; expected "
                          f"{1 - drop_prob:.0%} within {tolerance:.1%}", swapped)
    # Stochastic depth keeps the expected value: each sample's factor out / x is 0 or 1 / keep, of mean 1.
    keep = 1 - drop_prob
    factor = (out / x).reshape(n, -1).mean(dim=1)
    mean, tolerance = factor.mean().item(), 5 * math.sqrt(drop_prob / keep / n)
    if abs(mean - 1) > tolerance:
        named = {"drop_path_no_rescale": keep, "drop_path_rescale_by_drop_prob": keep / drop_prob}
        found = next((m for m, value in named.items() if abs(mean - value) <= tolerance), None)
        raise CheckFailed(f"with drop_prob={drop_prob} the mean of drop_path(x) / x over {n} samples is {mean:.3f}; "
                          f"it must stay 1 within {tolerance:.3f} (survivors divided by the keep probability)", found)


@pytest.mark.exercise(DROP_PATH, points=1.5)
def test_survivors_are_rescaled_by_the_keep_probability(drop_path):
    drop_prob = 0.25  # 1/keep = 4/3, 1/drop = 4: no wrong scale can pass
    x = positive(3000, 4, 3, seed=3)
    for scale_by_keep in (True, False):
        torch.manual_seed(5)
        actual_in = x.clone().requires_grad_()
        out = call_drop_path(drop_path, actual_in, drop_prob, True, scale_by_keep=scale_by_keep)
        kept = kept_samples(out.detach(), "drop_path")
        mask = kept.to(x.dtype).reshape(-1, 1, 1)
        expected = x * mask / (1 - drop_prob) if scale_by_keep else x * mask
        variants = drop_path_variants(x, kept, drop_prob) if scale_by_keep else {}
        check_close(out.detach(), expected, f"drop_path output with drop_prob={drop_prob}, scale_by_keep={scale_by_keep}",
                    variants)
        call_learner(lambda: out.sum().backward(), what="backward through drop_path's output")
        if actual_in.grad is None:
            raise CheckFailed("no gradient reaches x through drop_path: is the output detached?")
        check_close(actual_in.grad, expected / x, f"gradient of drop_path (scale_by_keep={scale_by_keep})")


@pytest.mark.exercise(DROP_PATH, points=0.5)
def test_identity_when_not_training_or_drop_prob_zero(drop_path):
    x = randn(5, 4, 3, seed=1)
    for args, kwargs, what in [((), {}, "drop_path(x)"), ((0.5,), {}, "drop_path(x, 0.5)"),
                               ((0.5, False), {}, "drop_path(x, 0.5, training=False)"),
                               ((0.9,), {"training": False, "scale_by_keep": False}, "drop_path(x, 0.9, training=False)"),
                               ((0.0, True), {}, "drop_path(x, 0.0, training=True)")]:
        torch.manual_seed(2)
        out = call_drop_path(drop_path, x.clone(), *args, **kwargs)
        if not torch.equal(out, x):
            eval_bug = "drop_path_active_in_eval" if "training=True" not in what else None
            raise CheckFailed(f"{what} must return x unchanged", eval_bug)


@pytest.mark.exercise(DROP_PATH, points=0.5)
def test_drop_prob_one_dtypes_and_no_in_place(drop_path):
    x = positive(50, 3, 2, seed=4)
    for scale_by_keep in (True, False):
        out = call_drop_path(drop_path, x.clone(), 1.0, True, scale_by_keep=scale_by_keep)
        if out.isnan().any():
            raise CheckFailed(f"drop_path(x, 1.0, training=True, scale_by_keep={scale_by_keep}) contains NaN; "
                              "it must give zeros", "drop_path_nan_at_one")
        if (out != 0).any():
            raise CheckFailed("drop_path with drop_prob=1 must drop every sample (zeros)")
    before = x.clone()
    torch.manual_seed(3)
    call_drop_path(drop_path, x, 0.5, True)
    if not torch.equal(x, before):
        raise CheckFailed("drop_path modified its input tensor", "drop_path_in_place")
    for dtype in (torch.float64, torch.float32, torch.bfloat16, torch.float16):
        xd = x.to(dtype)
        torch.manual_seed(4)
        out = call_drop_path(drop_path, xd, 0.5, True)
        if out.dtype != dtype:
            raise CheckFailed(f"a {dtype} input must give a {dtype} output (the mask follows x's dtype), got "
                              f"{out.dtype}", "drop_path_mask_float32")
        if out.device != xd.device:
            raise CheckFailed("the output must be on the input's device")


# ---- ex04_drop_path_module ------------------------------------------------------------------

@pytest.mark.exercise(DROP_PATH_MODULE, points=0.5)
def test_no_parameters_and_none_means_zero(DropPath):
    x = randn(6, 3, 4, seed=8)
    for args, what in [((), "DropPath()"), ((None,), "DropPath(None)"), ((0.0,), "DropPath(0.0)")]:
        module = call_learner(DropPath, *args, what=what)
        if list(module.parameters()) or len(module.state_dict()):
            raise CheckFailed(f"{what} must have no parameters and an empty state_dict")
        module.train()
        out = call_learner(module, x.clone(), what=f"{what}.forward(x)")
        if not (isinstance(out, torch.Tensor) and torch.equal(out, x)):
            raise CheckFailed(f"{what} must be the identity, even in training mode")


@pytest.mark.exercise(DROP_PATH_MODULE, points=1)
def test_training_mode_drops_whole_samples_at_its_rate(DropPath):
    n, drop_prob = 12_000, 0.3
    x = positive(n, 2, 3, seed=9)
    for scale_by_keep in (True, False):
        module = call_learner(DropPath, drop_prob, scale_by_keep=scale_by_keep,
                              what=f"DropPath({drop_prob}, scale_by_keep={scale_by_keep})")
        module.train()
        torch.manual_seed(12)
        out = call_learner(module, x.clone(), what="DropPath.forward(x) in training mode")
        kept = kept_samples(out, "DropPath in training mode")
        rate = kept.double().mean().item()
        if abs(rate - (1 - drop_prob)) > binomial_tolerance(drop_prob, n):
            raise CheckFailed(f"DropPath({drop_prob}) in training mode kept {rate:.1%} of the samples, "
                              f"expected {1 - drop_prob:.0%}")
        mask = kept.to(x.dtype).reshape(-1, 1, 1)
        expected = x * mask / (1 - drop_prob) if scale_by_keep else x * mask
        check_close(out, expected, f"DropPath({drop_prob}, scale_by_keep={scale_by_keep}) in training mode")


@pytest.mark.exercise(DROP_PATH_MODULE, points=1.5)
def test_eval_mode_is_the_identity(DropPath):
    x = positive(200, 3, 4, seed=10)
    module = call_learner(DropPath, 0.5, what="DropPath(0.5)")
    parent = torch.nn.Sequential(module)
    parent.eval()  # eval() reaches the submodule, as it does inside a model
    torch.manual_seed(13)
    out = call_learner(parent, x.clone(), what="DropPath.forward(x) in eval mode")
    if not (isinstance(out, torch.Tensor) and torch.equal(out, x)):
        raise CheckFailed("DropPath in eval mode must return its input unchanged", "drop_path_active_in_eval")


# ---- ex04_mlp --------------------------------------------------------------------------------

MLP_CASES = [  # in, hidden, out, act_layer, dtype
    (6, 10, 4, torch.nn.ReLU, torch.float64),
    (5, None, None, torch.nn.GELU, torch.float32),
    (8, 16, 3, torch.nn.Tanh, torch.float64),
]


def build_mlp(Mlp, reference, in_features, hidden, out, act_layer, dtype, drop=0.0, seed=0):
    return build_pair(Mlp, reference.Mlp, in_features, hidden, out, act_layer=act_layer, drop=drop,
                      what=f"Mlp({in_features}, {hidden}, {out}, act_layer={act_layer.__name__}, drop={drop})",
                      seed=seed, dtype=dtype)


@pytest.mark.exercise(MLP, points=1)
def test_layers_and_defaults(Mlp):
    module = call_learner(Mlp, 6, what="Mlp(6)")
    for name, shape in [("fc1", (6, 6)), ("fc2", (6, 6))]:
        layer = getattr(module, name, None)
        if not isinstance(layer, torch.nn.Linear) or (layer.in_features, layer.out_features) != shape \
                or layer.bias is None:
            raise CheckFailed(f"Mlp(6).{name} must be nn.Linear{shape} with a bias: hidden_features and "
                              "out_features default to in_features")
    if not isinstance(getattr(module, "act", None), torch.nn.GELU):
        raise CheckFailed("Mlp's default act must be an nn.GELU instance")
    module = call_learner(Mlp, 6, 10, what="Mlp(6, 10)")
    fc2 = getattr(module, "fc2", None)
    if not isinstance(fc2, torch.nn.Linear) or (fc2.in_features, fc2.out_features) != (10, 6):
        shape = (fc2.in_features, fc2.out_features) if isinstance(fc2, torch.nn.Linear) else None
        raise CheckFailed(f"Mlp(6, 10).fc2 must be nn.Linear(10, 6): out_features defaults to in_features, got "
                          f"{shape or type(fc2).__name__}", "mlp_out_defaults_to_hidden" if shape == (10, 10) else None)
    module = call_learner(Mlp, 6, 10, 4, act_layer=torch.nn.ReLU, what="Mlp(6, 10, 4, act_layer=nn.ReLU)")
    if (module.fc1.in_features, module.fc1.out_features, module.fc2.in_features, module.fc2.out_features) != (6, 10, 10, 4):
        raise CheckFailed("Mlp(6, 10, 4): fc1 must map 6 -> 10 and fc2 10 -> 4")
    if not isinstance(getattr(module, "act", None), torch.nn.ReLU):
        raise CheckFailed("Mlp(..., act_layer=nn.ReLU).act must be an nn.ReLU instance", "mlp_act_layer_ignored")
    keys = sorted(module.state_dict())
    if keys != ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]:
        raise CheckFailed(f"Mlp's state_dict keys must be fc1.weight, fc1.bias, fc2.weight, fc2.bias, got {keys}")


@pytest.mark.exercise(MLP, points=1)
def test_mlp_matches_reference_with_copied_weights(Mlp, reference):
    for seed, (in_features, hidden, out, act_layer, dtype) in enumerate(MLP_CASES):
        module, ref = build_mlp(Mlp, reference, in_features, hidden, out, act_layer, dtype, drop=0.4, seed=10 * seed)
        module.eval()
        ref.eval()
        x = randn(2, 3, in_features, seed=seed, dtype=dtype)
        expected_in = clones(x, requires_grad=True)[0]
        expected = ref(expected_in)
        expected.sum().backward()
        actual_in = clones(x, requires_grad=True)[0]
        actual = call_learner(module, actual_in, what="Mlp.forward(x)")
        what = f"Mlp({in_features}, {hidden}, {out}, act_layer={act_layer.__name__}) in {dtype}"
        check_close(actual, expected, what, mlp_variants(ref, x))
        call_learner(lambda: actual.sum().backward(), what="backward through Mlp")
        check_gradients(what, [("its input", actual_in, expected_in)], module, ref)


@pytest.mark.exercise(MLP, points=1)
def test_dropout_after_activation_and_after_fc2(Mlp, reference):
    module, ref = build_mlp(Mlp, reference, 6, 12, 5, torch.nn.GELU, torch.float64, drop=0.3, seed=3)
    module.train()
    ref.train()
    x = randn(4, 7, 6, seed=5)
    torch.manual_seed(21)
    expected = ref(x.clone())
    torch.manual_seed(21)
    actual = call_learner(module, x.clone(), what="Mlp.forward(x) in training mode")
    check_close(actual, expected, "Mlp in training mode with drop=0.3 (the same seed as the reference: dropout "
                "after the activation, then after fc2)", mlp_variants(ref, x, seed=21))


# ---- ex04_attention ---------------------------------------------------------------------------

ATTENTION_CASES = [  # dim, num_heads (None: the default 8), qkv_bias, dtype, batch, tokens
    (12, 3, True, torch.float64, 2, 5),
    (16, None, False, torch.float64, 3, 7),
    (8, 2, True, torch.float32, 2, 4),
    (24, 4, False, torch.float32, 1, 9),
]


def build_attention(Attention, reference, dim, num_heads, qkv_bias, dtype, seed, **drops):
    heads = {} if num_heads is None else {"num_heads": num_heads}
    what = f"Attention({dim}, num_heads={num_heads or 8}, qkv_bias={qkv_bias})"
    module, ref = build_pair(Attention, reference.Attention, dim, qkv_bias=qkv_bias, **heads, **drops, what=what,
                             seed=seed, dtype=dtype)
    return module, ref, what


@pytest.mark.exercise(ATTENTION, points=1)
def test_qkv_and_proj_layers(Attention):
    for qkv_bias in (False, True):
        module = call_learner(Attention, 12, num_heads=3, qkv_bias=qkv_bias,
                              what=f"Attention(12, num_heads=3, qkv_bias={qkv_bias})")
        qkv, proj = getattr(module, "qkv", None), getattr(module, "proj", None)
        if not isinstance(qkv, torch.nn.Linear) or (qkv.in_features, qkv.out_features) != (12, 36):
            raise CheckFailed("Attention.qkv must be nn.Linear(dim, 3 * dim)")
        if (qkv.bias is not None) != qkv_bias:
            raise CheckFailed(f"with qkv_bias={qkv_bias}, qkv must {'have' if qkv_bias else 'not have'} a bias")
        if not isinstance(proj, torch.nn.Linear) or (proj.in_features, proj.out_features) != (12, 12) \
                or proj.bias is None:
            raise CheckFailed("Attention.proj must be nn.Linear(dim, dim) with a bias")
        keys = sorted(module.state_dict())
        expected = sorted(["qkv.weight", "proj.weight", "proj.bias"] + (["qkv.bias"] if qkv_bias else []))
        if keys != expected:
            raise CheckFailed(f"Attention's state_dict keys must be {expected}, got {keys}")
    call_learner(Attention, 16, what="Attention(16) (the default of 8 heads)")


@pytest.mark.exercise(ATTENTION, points=1)
def test_attention_matches_reference_with_copied_weights(Attention, reference):
    for seed, (dim, num_heads, qkv_bias, dtype, batch, tokens) in enumerate(ATTENTION_CASES):
        module, ref, what = build_attention(Attention, reference, dim, num_heads, qkv_bias, dtype, 20 * seed,
                                            attn_drop=0.2, proj_drop=0.1)
        module.eval()
        ref.eval()
        x = randn(batch, tokens, dim, seed=seed, dtype=dtype)
        expected_in = clones(x, requires_grad=True)[0]
        expected = ref(expected_in)
        (expected * randn(*expected.shape, seed=99, dtype=dtype)).sum().backward()
        actual_in = clones(x, requires_grad=True)[0]
        actual = call_learner(module, actual_in, what=f"{what}.forward(x)")
        check_close(actual, expected, f"{what} output in {dtype}, eval mode", attention_variants(ref, x))
        call_learner(lambda: (actual * randn(*expected.shape, seed=99, dtype=dtype)).sum().backward(),
                     what="backward through Attention")
        check_gradients(what, [("its input", actual_in, expected_in)], module, ref)


@pytest.mark.exercise(ATTENTION, points=1)
def test_qkv_layout_is_timms(Attention, reference):
    dim, heads, head_dim = 12, 3, 4
    w = {name: randn(*shape, seed=i) for i, (name, shape) in enumerate(
        [("q", (dim, dim)), ("k", (dim, dim)), ("v", (dim, dim)), ("bq", (dim,)), ("bk", (dim,)), ("bv", (dim,)),
         ("proj", (dim, dim)), ("bproj", (dim,))])}
    state = {"qkv.weight": torch.cat([w["q"], w["k"], w["v"]]), "qkv.bias": torch.cat([w["bq"], w["bk"], w["bv"]]),
             "proj.weight": w["proj"], "proj.bias": w["bproj"]}
    module = call_learner(Attention, dim, num_heads=heads, qkv_bias=True, what="Attention(12, num_heads=3, qkv_bias=True)")
    call_learner(module.double, what="Attention.double()")
    load_state(module, state, "Attention")
    module.eval()
    x = randn(2, 6, dim, seed=30)
    q, k, v = F.linear(x, w["q"], w["bq"]), F.linear(x, w["k"], w["bk"]), F.linear(x, w["v"], w["bv"])
    outputs = []
    for h in range(heads):  # head h owns channels h * head_dim ... of each of W_q, W_k, W_v
        part = slice(h * head_dim, (h + 1) * head_dim)
        weights = torch.softmax(q[..., part] @ k[..., part].transpose(-2, -1) / math.sqrt(head_dim), dim=-1)
        outputs.append(weights @ v[..., part])
    expected = F.linear(torch.cat(outputs, dim=-1), w["proj"], w["bproj"])
    ref = reference.Attention(dim, num_heads=heads, qkv_bias=True).double()
    ref.load_state_dict(state)
    ref.eval()
    with torch.no_grad():
        actual = call_learner(module, x.clone(), what="Attention.forward(x)")
        check_close(actual, expected, "Attention with qkv.weight = [W_q; W_k; W_v] (rows of head 0 first in each): "
                    "each head must use its own slice of q, k and v", attention_variants(ref, x))


@pytest.mark.exercise(ATTENTION, points=1)
def test_dropout_in_training_is_random_and_unbiased(Attention, reference):
    n, dim, heads = 4000, 8, 2
    one = randn(1, 4, dim, seed=40)
    x = one.expand(n, -1, -1).clone()  # the same sequence n times: n independent dropout draws
    module, _, what = build_attention(Attention, reference, dim, heads, True, torch.float64, 7,
                                      attn_drop=0.3, proj_drop=0.2)
    module.eval()
    with torch.no_grad():
        expected = call_learner(module, one.clone(), what=f"{what}.forward(x) in eval mode")
        module.train()
        torch.manual_seed(41)
        out = call_learner(module, x, what=f"{what}.forward(x) in training mode")
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        raise CheckFailed(f"{what} in training mode must return a tensor of shape {tuple(x.shape)}")
    if torch.allclose(out, out[:1].expand_as(out)):
        raise CheckFailed("in training mode with attn_drop=0.3 and proj_drop=0.2 the output must be random")
    mean, spread = out.mean(dim=0, keepdim=True), out.std(dim=0, keepdim=True)
    tolerance = 6 * spread / math.sqrt(n) + 1e-9
    if ((mean - expected).abs() > tolerance).any():
        raise CheckFailed("in training mode the mean output over many dropout draws must equal the eval output "
                          "(inverted dropout on the attention weights and after proj)")
    module = call_learner(Attention, dim, num_heads=heads, what=f"Attention({dim}, num_heads={heads})")
    module = module.double()
    with torch.no_grad():
        module.eval()
        eval_out = module(one)
        module.train()
        train_out = module(one)
    if not torch.allclose(eval_out, train_out):
        raise CheckFailed("with attn_drop=0 and proj_drop=0, training mode must give the eval output")
    check_attn_drop_acts_on_weights(Attention)


def check_attn_drop_acts_on_weights(Attention):
    """attn_drop zeroes single query-key weights: with positive values and proj the identity, an output
    feature is zero only when all of a query's keys are dropped (p ** tokens), not with probability p."""
    n, tokens, dim, heads, p = 500, 4, 8, 2, 0.5
    module = call_learner(Attention, dim, num_heads=heads, qkv_bias=True, attn_drop=p, proj_drop=0.0,
                          what=f"Attention({dim}, num_heads={heads}, qkv_bias=True, attn_drop={p})")
    call_learner(module.double, what="Attention.double()")
    weight = randn(3 * dim, dim, seed=50) * 0.1
    weight[2 * dim:] = weight[2 * dim:].abs()  # v = W_v x + b_v > 0 for x > 0
    bias = torch.zeros(3 * dim, dtype=torch.float64)
    bias[2 * dim:] = 1.0
    load_state(module, {"qkv.weight": weight, "qkv.bias": bias, "proj.weight": torch.eye(dim, dtype=torch.float64),
                        "proj.bias": torch.zeros(dim, dtype=torch.float64)}, "Attention")
    module.train()
    x = positive(n, tokens, dim, seed=51)
    torch.manual_seed(52)
    with torch.no_grad():
        out = call_learner(module, x, what="Attention.forward(x) in training mode, attn_drop=0.5")
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        raise CheckFailed(f"Attention in training mode must return a tensor of shape {tuple(x.shape)}")
    zeros = (out == 0).double().mean().item()
    expected = p ** tokens
    if zeros > expected + 5 * math.sqrt(expected * (1 - expected) / (n * tokens * heads)) + 0.01:
        raise CheckFailed(f"with attn_drop={p}, proj the identity and positive values, {zeros:.3f} of the output "
                          f"features are zero; only a query whose {tokens} key weights are all dropped ({expected:.3f} "
                          "of them) should give zeros: attn_drop must act on the attention weights",
                          "attn_drop_on_output")


# ---- ex04_block ------------------------------------------------------------------------------

def timm_block_shapes(dim, mlp_ratio, qkv_bias):
    """The state_dict of timm 1.0's vision_transformer.Block (default options), key by key."""
    hidden = int(dim * mlp_ratio)
    shapes = {"norm1.weight": (dim,), "norm1.bias": (dim,), "attn.qkv.weight": (3 * dim, dim),
              "attn.qkv.bias": (3 * dim,), "attn.proj.weight": (dim, dim), "attn.proj.bias": (dim,),
              "norm2.weight": (dim,), "norm2.bias": (dim,), "mlp.fc1.weight": (hidden, dim),
              "mlp.fc1.bias": (hidden,), "mlp.fc2.weight": (dim, hidden), "mlp.fc2.bias": (dim,)}
    return {key: shape for key, shape in shapes.items() if qkv_bias or key != "attn.qkv.bias"}


def timm_block_forward(state, x, num_heads, eps):
    """timm's Block.forward (eval mode, default options), written out from its source."""
    B, N, dim = x.shape
    head_dim = dim // num_heads
    h = F.layer_norm(x, (dim,), state["norm1.weight"], state["norm1.bias"], eps)
    qkv = F.linear(h, state["attn.qkv.weight"], state.get("attn.qkv.bias"))
    q, k, v = qkv.reshape(B, N, 3, num_heads, head_dim).permute(2, 0, 3, 1, 4)
    weights = (q * head_dim ** -0.5 @ k.transpose(-2, -1)).softmax(dim=-1)
    attended = (weights @ v).transpose(1, 2).reshape(B, N, dim)
    x = x + F.linear(attended, state["attn.proj.weight"], state["attn.proj.bias"])
    h = F.layer_norm(x, (dim,), state["norm2.weight"], state["norm2.bias"], eps)
    h = F.linear(F.gelu(F.linear(h, state["mlp.fc1.weight"], state["mlp.fc1.bias"])),
                 state["mlp.fc2.weight"], state["mlp.fc2.bias"])
    return x + h


def build_block(Block, reference, dtype, seed, dim, num_heads, **options):
    what = f"Block({dim}, {num_heads}{''.join(f', {k}={describe_option(v)}' for k, v in options.items())})"
    module, ref = build_pair(Block, reference.Block, dim, num_heads, **options, what=what, seed=seed, dtype=dtype)
    return module, ref, what


def describe_option(value):
    if isinstance(value, partial):
        return f"partial({value.func.__name__}, {value.keywords})"
    return getattr(value, "__name__", repr(value))


BRANCHES_RUN = {0.0: "both branches dropped", 1.0: "only the attention branch", 10.0: "only the MLP branch",
                11.0: "both branches"}


class Constant(torch.nn.Module):
    """A branch that ignores its input and writes one value everywhere."""

    def __init__(self, value):
        super().__init__()
        self.value = value

    def forward(self, x):
        return torch.full_like(x, self.value)


@pytest.mark.exercise(BLOCK, points=1)
def test_submodules_and_timm_state_dict(Block):
    for qkv_bias in (True, False):
        module = call_learner(Block, 24, 4, mlp_ratio=2.5, qkv_bias=qkv_bias,
                              what=f"Block(24, 4, mlp_ratio=2.5, qkv_bias={qkv_bias})")
        for name in ("norm1", "attn", "norm2", "mlp", "drop_path"):
            if not isinstance(getattr(module, name, None), torch.nn.Module):
                raise CheckFailed(f"Block.{name} must be a submodule")
        shapes = timm_block_shapes(24, 2.5, qkv_bias)
        keys = sorted(module.state_dict())
        if keys != sorted(shapes):
            raise CheckFailed(f"Block's state_dict keys must be timm's {sorted(shapes)}, got {keys}")
        checkpoint = {key: randn(*shape, seed=i, dtype=torch.float32) for i, (key, shape) in enumerate(shapes.items())}
        load_state(module, checkpoint, "Block (a state_dict with timm's keys and shapes)")
    module = call_learner(Block, 8, 2, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
                          what="Block(8, 2, norm_layer=partial(nn.LayerNorm, eps=1e-6))")
    if getattr(module.norm1, "eps", None) != 1e-6 or getattr(module.norm2, "eps", None) != 1e-6:
        raise CheckFailed("norm1 and norm2 must be built with norm_layer(dim)")


@pytest.mark.exercise(BLOCK, points=1)
@pytest.mark.parametrize("case", ["float64, qkv_bias, ReLU, eps 1e-6", "float32, defaults"])
def test_block_matches_reference_with_copied_weights(Block, reference, case):
    if case.startswith("float64"):
        dtype, dim, heads = torch.float64, 12, 3
        options = dict(mlp_ratio=2.5, qkv_bias=True, act_layer=torch.nn.ReLU,
                       norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), drop=0.1, attn_drop=0.1, drop_path=0.2)
    else:
        dtype, dim, heads, options = torch.float32, 16, 4, {}
    module, ref, what = build_block(Block, reference, dtype, 50, dim, heads, **options)
    module.eval()
    ref.eval()
    x = randn(2, 6, dim, seed=51, dtype=dtype)
    upstream = randn(2, 6, dim, seed=52, dtype=dtype)
    expected_in = clones(x, requires_grad=True)[0]
    expected = ref(expected_in)
    (expected * upstream).sum().backward()
    actual_in = clones(x, requires_grad=True)[0]
    actual = call_learner(module, actual_in, what=f"{what}.forward(x)")
    with torch.no_grad():
        variants = {m: f() for m, f in block_variants(ref, x).items()}
    check_close(actual, expected, f"{what} output in {dtype}, eval mode", variants)
    call_learner(lambda: (actual * upstream).sum().backward(), what="backward through Block")
    check_gradients(what, [("its input", actual_in, expected_in)], module, ref)


@pytest.mark.exercise(BLOCK, points=1)
@pytest.mark.parametrize("qkv_bias", [True, False])
def test_timm_state_dict_gives_timms_output(Block, reference, qkv_bias):
    dim, heads, eps = 24, 4, 1e-6
    shapes = timm_block_shapes(dim, 4.0, qkv_bias)
    state = {key: randn(*shape, seed=60 + i) * (0.3 if "weight" in key and "norm" not in key else 1.0)
             for i, (key, shape) in enumerate(shapes.items())}
    what = f"Block({dim}, {heads}, qkv_bias={qkv_bias}, norm_layer=partial(nn.LayerNorm, eps=1e-6))"
    module = call_learner(Block, dim, heads, qkv_bias=qkv_bias, norm_layer=partial(torch.nn.LayerNorm, eps=eps),
                          what=what)
    call_learner(module.double, what="Block.double()")
    load_state(module, state, "Block (a state_dict with timm's keys)")
    ref = reference.Block(dim, heads, qkv_bias=qkv_bias, norm_layer=partial(torch.nn.LayerNorm, eps=eps)).double()
    ref.load_state_dict(state)
    module.eval()
    ref.eval()
    x = randn(2, 5, dim, seed=70)
    with torch.no_grad():
        expected = timm_block_forward(state, x, heads, eps)
        variants = {m: f() for m, f in block_variants(ref, x).items()}
        actual = call_learner(module, x.clone(), what=f"{what}.forward(x)")
    check_close(actual, expected, f"{what} with a timm-layout state_dict, against timm's forward pass", variants)


@pytest.mark.exercise(BLOCK, points=1)
def test_identity_when_both_branches_output_zero(Block):
    x = randn(3, 5, 8, seed=80)
    for mode in ("eval", "train"):
        module = call_learner(Block, 8, 2, qkv_bias=True, drop_path=0.3, what="Block(8, 2, qkv_bias=True, drop_path=0.3)")
        module = module.double()
        randomise(module, 81)
        with torch.no_grad():
            for linear in (module.attn.proj, module.mlp.fc2):  # both branches now output zero
                linear.weight.zero_()
                linear.bias.zero_()
        getattr(module, mode)()
        with torch.no_grad():
            out = call_learner(module, x.clone(), what=f"Block.forward(x) in {mode} mode")
        if not (isinstance(out, torch.Tensor) and torch.equal(out, x)):
            post = None
            if isinstance(out, torch.Tensor) and out.shape == x.shape:
                with torch.no_grad():
                    post = "block_post_norm" if torch.allclose(
                        out, module.norm2(module.norm1(x)), atol=1e-6) else None
            raise CheckFailed(f"in {mode} mode, with attn.proj and mlp.fc2 set to zero, the block must return its "
                              "input unchanged (pre-norm residual branches)", post)


@pytest.mark.exercise(BLOCK, points=1)
def test_drop_path_draws_independently_per_branch(Block):
    n, drop_prob, keep = 8000, 0.4, 0.6
    module = call_learner(Block, 4, 1, drop_path=drop_prob, what=f"Block(4, 1, drop_path={drop_prob})")
    module = module.double()
    module.attn, module.mlp = Constant(1.0), Constant(10.0)  # recognisable branch outputs
    x = torch.zeros(n, 2, 4, dtype=torch.float64)
    module.eval()
    with torch.no_grad():
        out = call_learner(module, x.clone(), what="Block.forward(x) in eval mode")
    if not (isinstance(out, torch.Tensor) and torch.allclose(out, x + 11.0)):
        raise CheckFailed("in eval mode both branches must be added in full: x + attn(norm1(x)), then "
                          "+ mlp(norm2(x))")
    module.train()
    torch.manual_seed(90)
    with torch.no_grad():
        out = call_learner(module, x.clone(), what="Block.forward(x) in training mode")
    added = out * keep  # what the branches added, with the 1 / keep_prob undone: 0, 1, 10 or 11
    per_sample = added[:, :1, :1]
    if not torch.allclose(added, per_sample.expand_as(added), atol=1e-9) or \
            not torch.isin(per_sample.round(), torch.tensor([0.0, 1.0, 10.0, 11.0], dtype=torch.float64)).all() or \
            not torch.allclose(per_sample, per_sample.round(), atol=1e-9):
        raise CheckFailed("in training mode each branch of a sample must be either dropped or added in full, "
                          "divided by the keep probability")
    shares = {v: (per_sample.round() == v).double().mean().item() for v in (0.0, 1.0, 10.0, 11.0)}
    expected = {0.0: drop_prob ** 2, 1.0: keep * drop_prob, 10.0: drop_prob * keep, 11.0: keep ** 2}
    if shares[1.0] == 0 and shares[10.0] == 0:
        raise CheckFailed("in training mode the two branches of a sample were always dropped together",
                          "drop_path_shared_between_branches")
    for value, p in expected.items():
        if abs(shares[value] - p) > binomial_tolerance(p, n):
            raise CheckFailed(f"in training mode with drop_path={drop_prob}, {shares[value]:.1%} of the samples had "
                              f"{BRANCHES_RUN[value]}; "
                              f"expected {p:.0%} (one independent draw per branch and sample)")


@pytest.mark.exercise(BLOCK, points=1)
def test_dropout_rates_reach_the_sublayers(Block, reference):
    options = dict(qkv_bias=True, drop=0.2, attn_drop=0.35, drop_path=0.25)
    module, ref, what = build_block(Block, reference, torch.float64, 100, 8, 2, **options)
    module.train()
    ref.train()
    x = randn(6, 5, 8, seed=101)
    torch.manual_seed(102)
    expected = ref(x.clone())
    torch.manual_seed(102)
    actual = call_learner(module, x.clone(), what=f"{what}.forward(x) in training mode")
    check_close(actual, expected, f"{what} in training mode from the reference's seed (attn_drop on the attention "
                "weights, drop after proj and in the MLP, drop_path on each branch)",
                block_dropout_variants(ref, x, seed=102))
