"""Hidden graders of chapter 3, Add & Norm (solutions/03_add_and_norm.ipynb).

Each test is one check of one exercise, worth the points of its marker. Reference values
are computed on clones before the learner's code sees any input. layer_norm is compared
with F.layer_norm, dropout with the definition of inverted dropout (nn.Dropout's), AddNorm
with nn.LayerNorm, and EncoderBlock with d2l 0.17's and with nn.TransformerEncoderLayer.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from autograder.references import load_reference
from autograder.probes import (CheckFailed, build_pair, call_learner, check_close, check_gradients, clones, diagnose,
                               in_learner_process, load_state, normal, randn, randomise, scaled_by_fan_in)
from .variants import (add_norm_variants, encoder_block_variants, layer_norm_variants,
                       position_wise_ffn_variants, seed_add_norm_variants)

LAYER_NORM = "ex03_layer_norm"
DROPOUT = "ex03_dropout"
ADD_NORM = "ex03_add_norm"
FFN = "ex03_position_wise_ffn"
ENCODER = "ex03_encoder_block"


@pytest.fixture(autouse=True)
def reference_block_uses_reference_attention(reference):
    """The reference notebook imports MultiHeadAttention from '02_multi_head_attention.ipynb' relative to
    the directory it is loaded from; make sure the reference block uses chapter 2's reference."""
    chapter_2 = load_reference("02_multi_head_attention")
    reference.names["MultiHeadAttention"] = chapter_2.names["MultiHeadAttention"]
    reference.names["load_from_torch"] = chapter_2.names["load_from_torch"]


# ---- ex03_layer_norm ---------------------------------------------------------------------

# (shape of x, normalized shape): one, two and three normalised axes, no batch axis, a batch of 1 row.
LAYER_NORM_CASES = [((4, 7), (7,)), ((2, 3, 5), (3, 5)), ((2, 3, 4, 5), (3, 4, 5)), ((6,), (6,)), ((3, 1, 8), (8,))]


def ln_inputs(shape, normalized_shape, seed, dtype=torch.float64, scale=3.0):
    x = randn(*shape, seed=seed, dtype=dtype) * scale + 1
    gamma = randn(*normalized_shape, seed=seed + 1, dtype=dtype)
    beta = randn(*normalized_shape, seed=seed + 2, dtype=dtype)
    return x, gamma, beta


def call_layer_norm(layer_norm, x, gamma, beta, eps):
    return call_learner(layer_norm, x, gamma, beta, eps,
                        what=f"layer_norm(x of shape {tuple(x.shape)}, gamma of shape {tuple(gamma.shape)}, eps={eps})")


@pytest.mark.exercise(LAYER_NORM, points=1)
def test_layer_norm_matches_torch(layer_norm):
    for seed, (shape, normalized_shape) in enumerate(LAYER_NORM_CASES):
        # eps = 1e-5 on inputs of variance 9, and eps = 0.01 on inputs of variance 0.0025, where its place matters
        for eps, scale in [(1e-5, 3.0), (1e-2, 0.05)]:
            x, gamma, beta = ln_inputs(shape, normalized_shape, 10 * seed, scale=scale)
            expected = F.layer_norm(x, normalized_shape, gamma, beta, eps)
            actual = call_layer_norm(layer_norm, *clones(x, gamma, beta), eps)
            check_close(actual, expected, f"layer_norm for x of shape {shape}, normalized shape {normalized_shape}, "
                        f"eps={eps}, random gamma and beta", layer_norm_variants(x, gamma, beta, eps))
    check_float32(layer_norm)


@pytest.mark.exercise(LAYER_NORM, points=1)
def test_statistics_are_per_sample(layer_norm):
    x, _, _ = ln_inputs((5, 10, 16), (16,), 20)
    gamma, beta = torch.ones(16, dtype=torch.float64), torch.zeros(16, dtype=torch.float64)
    variants = layer_norm_variants(x, gamma, beta)
    y = call_layer_norm(layer_norm, x.clone(), gamma.clone(), beta.clone(), 1e-5)
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        raise CheckFailed(f"layer_norm must return a tensor of x's shape {tuple(x.shape)}")
    if (y.mean(-1).abs() > 1e-6).any():
        raise CheckFailed("with gamma = 1 and beta = 0, every token's output must have mean 0 over its features",
                          diagnose(y, variants))
    if ((y.var(-1, unbiased=False) - 1).abs() > 1e-4).any():
        raise CheckFailed("with gamma = 1 and beta = 0, every token's output must have variance 1 (the biased "
                          "variance, dividing by N)", diagnose(y, variants))
    others = x.clone()
    others[1:] = randn(4, 10, 16, seed=21) * 10 - 5
    y2 = call_layer_norm(layer_norm, others, gamma.clone(), beta.clone(), 1e-5)
    if not torch.allclose(y2[0], y[0]):
        raise CheckFailed("changing the other samples of the batch changed sample 0's output: the statistics must be "
                          "each sample's own", diagnose(y, variants))


@pytest.mark.exercise(LAYER_NORM, points=1)
def test_gradients_match_torch(layer_norm):
    x, gamma, beta = ln_inputs((3, 4, 5), (4, 5), 30)
    upstream = randn(3, 4, 5, seed=33)
    expected = clones(x, gamma, beta, requires_grad=True)
    (F.layer_norm(expected[0], (4, 5), expected[1], expected[2], 1e-5) * upstream).sum().backward()
    actual = clones(x, gamma, beta, requires_grad=True)
    y = call_layer_norm(layer_norm, *actual, 1e-5)
    check_close(y, F.layer_norm(x, (4, 5), gamma, beta, 1e-5),
                "layer_norm output", layer_norm_variants(x, gamma, beta))
    call_learner(lambda: (y * upstream).sum().backward(), what="backward through layer_norm")
    check_gradients("layer_norm", zip(["x", "gamma", "beta"], actual, expected))


# What the notebook's rule forbids in layer_norm: the library's variance, standard deviation and
# normalisation, by the names torch gives them (torch.var and Tensor.var are both "var").
FORBIDDEN_IN_LAYER_NORM = {"var", "var_mean", "std", "std_mean", "layer_norm", "native_layer_norm"}


class RecordingTorchCalls:
    """Calls a function under a TorchFunctionMode that records the names of the torch functions and
    Tensor methods it calls. Built where the learner's code runs (probes.in_learner_process)."""

    def __init__(self, function):
        self.function = function
        self.calls = []

    def __call__(self, *args, **kwargs):
        from torch.overrides import TorchFunctionMode
        calls = self.calls

        class Record(TorchFunctionMode):
            def __torch_function__(self, func, types, args=(), kwargs=None):
                calls.append(str(getattr(func, "__name__", "")))
                return func(*args, **(kwargs or {}))

        with Record():
            return self.function(*args, **kwargs)

    def used(self, names):
        return sorted(set(self.calls) & set(names))


@pytest.mark.exercise(LAYER_NORM, points=1)
def test_layer_norm_from_scratch(layer_norm):
    """The notebook's rule: Tensor.mean, powers and torch.sqrt; no library variance or layer norm."""
    recorder = in_learner_process(RecordingTorchCalls, layer_norm)
    for shape, normalized_shape in [((4, 7), (7,)), ((2, 3, 5), (3, 5))]:
        x, gamma, beta = ln_inputs(shape, normalized_shape, 60)
        call_layer_norm(recorder, x, gamma, beta, 1e-5)
    used = list(recorder.used(sorted(FORBIDDEN_IN_LAYER_NORM)))
    if used:
        raise CheckFailed(f"layer_norm must compute its statistics from scratch (Tensor.mean, powers, torch.sqrt); "
                          f"it calls {', '.join(used)}", "layernorm_library_statistics")


def check_float32(layer_norm):
    for seed, (shape, normalized_shape) in enumerate([((8, 16), (16,)), ((2, 6, 3, 4), (3, 4))]):
        x, gamma, beta = ln_inputs(shape, normalized_shape, 40 + 10 * seed, dtype=torch.float32)
        expected = F.layer_norm(x, normalized_shape, gamma, beta, 1e-5)
        actual = call_layer_norm(layer_norm, *clones(x, gamma, beta), 1e-5)
        if isinstance(actual, torch.Tensor) and actual.dtype != torch.float32:
            raise CheckFailed(f"float32 inputs must give a float32 output, got {actual.dtype}")
        check_close(actual, expected, f"layer_norm in float32, normalized shape {normalized_shape}",
                    layer_norm_variants(x, gamma, beta))


# ---- ex03_dropout ------------------------------------------------------------------------

def call_dropout(dropout, x, p, training):
    return call_learner(dropout, x, p, training, what=f"dropout(x, p={p}, training={training})")


def diagnose_dropout(dropout, p=0.3):
    """Which misconception the learner's dropout shows on a probe of ones, if any."""
    x = torch.ones(20_000, dtype=torch.float64)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(5)
            train = call_dropout(dropout, x.clone(), p, True)
        test = call_dropout(dropout, x.clone(), p, False)
    except CheckFailed:
        return None
    if not isinstance(train, torch.Tensor) or not isinstance(test, torch.Tensor) or train.shape != x.shape:
        return None
    if not torch.allclose(test, x):
        return "dropout_classic_test_scaling" if torch.allclose(test, x * (1 - p)) else "dropout_in_eval"
    kept = train[train != 0]
    if kept.numel() == 0:
        return None
    zeros = 1 - kept.numel() / x.numel()
    if torch.allclose(kept, torch.ones_like(kept)):
        return "dropout_not_rescaled"
    if torch.allclose(kept, torch.full_like(kept, 1 / p)):
        return "dropout_keep_probability_swapped" if abs(zeros - (1 - p)) < 0.05 else "dropout_scaled_by_p"
    return None


def nonzero_inputs(*shape, seed, dtype=torch.float64):
    x = randn(*shape, seed=seed)
    return (x.sign() * (x.abs() + 0.5)).to(dtype)      # no zeros in x, so a zero in the output is a drop


@pytest.mark.exercise(DROPOUT, points=1)
def test_identity_in_eval_and_at_p_zero(dropout):
    for dtype in (torch.float64, torch.float32):
        x = nonzero_inputs(6, 7, seed=50, dtype=dtype)
        cases = [(p, False) for p in (0.0, 0.3, 0.5, 0.9, 1.0)] + [(0.0, True)]
        for p, training in cases:
            out = call_dropout(dropout, x.clone(), p, training)
            if not isinstance(out, torch.Tensor) or out.shape != x.shape or out.dtype != dtype \
                    or not torch.equal(out, x):
                what = "in eval mode" if not training else "with p = 0"
                raise CheckFailed(f"dropout(x, p={p}, training={training}) must return x unchanged {what}",
                                  diagnose_dropout(dropout))


@pytest.mark.exercise(DROPOUT, points=1)
def test_each_element_is_zero_or_scaled(dropout):
    for dtype in (torch.float64, torch.float32):
        x = nonzero_inputs(50, 40, seed=51, dtype=dtype)
        before = x.clone()
        for p in (0.3, 0.6):
            out = call_dropout(dropout, x, p, True)
            if not isinstance(out, torch.Tensor) or out.shape != x.shape or out.dtype != dtype:
                raise CheckFailed(f"dropout must return a tensor of x's shape {tuple(x.shape)} and dtype {dtype}")
            if torch.isnan(out).any():
                raise CheckFailed(f"dropout(x, p={p}, training=True) gave NaN")
            kept = out != 0
            if not kept.any() or kept.all():
                raise CheckFailed(f"with p = {p} some elements of 2000 must be dropped and some kept",
                                  diagnose_dropout(dropout))
            if not torch.allclose(out[kept], x[kept] / (1 - p)):
                raise CheckFailed(f"with p = {p} each kept element must be x / (1 - p)", diagnose_dropout(dropout))
        if not torch.equal(x, before):
            raise CheckFailed("dropout must not modify x in place")
        out = call_dropout(dropout, x, 1.0, True)
        if not isinstance(out, torch.Tensor) or torch.isnan(out).any() or (out != 0).any():
            raise CheckFailed("dropout(x, p=1, training=True) must give zeros, not NaN")


@pytest.mark.exercise(DROPOUT, points=1)
def test_drop_rate_and_mean_statistically(dropout):
    n, p = 200_000, 0.3
    x = torch.ones(n, dtype=torch.float64)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(2024)
        out = call_dropout(dropout, x, p, True)
    if not isinstance(out, torch.Tensor) or out.shape != x.shape:
        raise CheckFailed(f"dropout must return a tensor of x's shape ({n},)")
    zeros = (out == 0).double().mean().item()
    zeros_tolerance = 5 * math.sqrt(p * (1 - p) / n)            # five binomial standard deviations
    if abs(zeros - p) > zeros_tolerance:
        raise CheckFailed(f"with p = {p}, {zeros:.3f} of {n} elements were zeroed; expected {p} +- {zeros_tolerance:.4f}",
                          diagnose_dropout(dropout))
    mean = out.mean().item()
    mean_tolerance = 5 * math.sqrt(p / ((1 - p) * n))           # each output is 0 or 1 / (1 - p)
    if abs(mean - 1) > mean_tolerance:
        raise CheckFailed(f"with p = {p} the mean of dropout(ones) is {mean:.4f}; it must stay 1 +- "
                          f"{mean_tolerance:.4f} (inverted dropout keeps the expected value)", diagnose_dropout(dropout))


@pytest.mark.exercise(DROPOUT, points=1)
def test_masks_are_fresh_and_independent(dropout):
    p = 0.3
    x = torch.ones(400, 500, dtype=torch.float32)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(77)
        first = call_dropout(dropout, x, p, True)
        second = call_dropout(dropout, x, p, True)
    for out in (first, second):
        if not isinstance(out, torch.Tensor) or out.shape != x.shape or out.dtype != x.dtype or out.device != x.device:
            raise CheckFailed("dropout must return a tensor of x's shape, dtype and device")
    for dtype in (torch.bfloat16,):  # half precision: a float32 mask would promote the output
        half = torch.ones(40, 50, dtype=dtype)
        out = call_dropout(dropout, half, p, True)
        if not isinstance(out, torch.Tensor) or out.dtype != dtype or out.shape != half.shape:
            raise CheckFailed(f"dropout(x, p={p}, training=True) on a {dtype} x must return a {dtype} tensor of x's "
                              f"shape, got {getattr(out, 'dtype', type(out).__name__)}", "dropout_mask_float32")
    a, b = first == 0, second == 0
    if torch.equal(a, b):
        raise CheckFailed("two calls gave the same mask: dropout must draw a new mask at every call")
    both = p * p
    for what, u, v in [("two calls", a, b), ("neighbouring rows", a[:-1], a[1:]), ("neighbouring columns", a[:, :-1], a[:, 1:])]:
        joint = (u & v).double().mean().item()
        tolerance = 5 * math.sqrt(both * (1 - both) / u.numel())
        if abs(joint - both) > tolerance:
            raise CheckFailed(f"the masks of {what} are not independent: both are zero at {joint:.3f} of the places, "
                              f"p^2 = {both:.3f} expected (+- {tolerance:.4f}); each element needs its own draw",
                              diagnose_dropout(dropout))


# ---- ex03_add_norm -----------------------------------------------------------------------

class KnownDropout(torch.nn.Dropout):
    """A dropout whose mask the grader chose: in training it returns t * mask / (1 - p)."""

    def __init__(self, p, mask):
        super().__init__(p)
        self.mask = mask

    def forward(self, t):
        if not self.training:
            return t
        if t.shape != self.mask.shape:
            raise CheckFailed(f"self.dropout was applied to a tensor of shape {tuple(t.shape)}; it applies to Y, "
                              f"of shape {tuple(self.mask.shape)}")
        return t * self.mask / (1 - self.p)


def build_add_norm(AddNorm, reference, normalized_shape, dropout, seed):
    return build_pair(AddNorm, reference.AddNorm, normalized_shape, dropout,
                      what=f"AddNorm({normalized_shape!r}, {dropout})", seed=seed, draw=normal(1.0))


@pytest.mark.exercise(ADD_NORM, points=1)
def test_attributes_and_state_dict(AddNorm):
    for normalized_shape, expected_shape, rate in [(8, (8,), 0.2), ([8], (8,), 0.5), ([5, 8], (5, 8), 0.3)]:
        module = call_learner(AddNorm, normalized_shape, rate, what=f"AddNorm({normalized_shape!r}, {rate})")
        drop, ln = getattr(module, "dropout", None), getattr(module, "ln", None)
        if not isinstance(drop, torch.nn.Dropout):
            raise CheckFailed(f"AddNorm.dropout must be an nn.Dropout, got {type(drop).__name__}")
        if drop.p != rate:
            raise CheckFailed(f"AddNorm({normalized_shape!r}, {rate}).dropout.p is {drop.p}; it must be the dropout "
                              "argument", "addnorm_dropout_hard_coded")
        if not isinstance(ln, torch.nn.LayerNorm) or tuple(ln.normalized_shape) != expected_shape:
            raise CheckFailed(f"AddNorm({normalized_shape!r}, {rate}).ln must be nn.LayerNorm({normalized_shape!r})")
        if sorted(module.state_dict()) != ["ln.bias", "ln.weight"]:
            raise CheckFailed(f"AddNorm's state_dict keys must be ln.weight and ln.bias, got {sorted(module.state_dict())}")


@pytest.mark.exercise(ADD_NORM, points=1)
@pytest.mark.parametrize("normalized_shape", [[6], [4, 6]], ids=["normalized shape [6]", "normalized shape [4, 6]"])
def test_eval_is_layer_norm_of_the_sum(AddNorm, reference, normalized_shape):
    module, ref = build_add_norm(AddNorm, reference, normalized_shape, 0.5, seed=60)
    module.eval()
    ref.eval()
    X, Y = randn(3, 4, 6, seed=61) * 2 + 1, randn(3, 4, 6, seed=62)
    upstream = randn(3, 4, 6, seed=63)
    expected_in = clones(X, Y, requires_grad=True)
    expected = ref(*expected_in)
    (expected * upstream).sum().backward()
    actual_in = clones(X, Y, requires_grad=True)
    out = call_learner(module, *actual_in, what="AddNorm.forward(X, Y) in eval mode")
    with torch.no_grad():
        variants = add_norm_variants(ref.ln, X, Y)
    check_close(out, expected, f"AddNorm(X, Y) in eval mode with dropout 0.5, {normalized_shape}: LayerNorm(X + Y)",
                variants)
    call_learner(lambda: (out * upstream).sum().backward(), what="backward through AddNorm")
    check_gradients("AddNorm", zip("XY", actual_in, expected_in), module, ref)


@pytest.mark.exercise(ADD_NORM, points=1)
def test_training_drops_out_the_sublayer_output_only(AddNorm, reference):
    p = 0.4
    module, ref = build_add_norm(AddNorm, reference, [6], p, seed=70)
    X, Y = randn(3, 4, 6, seed=71) * 2 + 1, randn(3, 4, 6, seed=72)
    mask = (torch.rand(3, 4, 6, generator=torch.Generator().manual_seed(73)) >= p).double()
    module.dropout = KnownDropout(p, mask)
    module.train()

    def drop(t):
        return t * mask / (1 - p)

    with torch.no_grad():
        expected = F.layer_norm(drop(Y) + X, (6,), ref.ln.weight, ref.ln.bias)
        out = call_learner(module, X.clone(), Y.clone(), what="AddNorm.forward(X, Y) in training mode")
        variants = add_norm_variants(ref.ln, X, Y, drop)
        seed = seed_add_norm_variants(ref.ln, X, Y, drop)
        silent = call_learner(module, X.clone(), torch.zeros_like(Y), what="AddNorm.forward(X, 0) in training mode")
    try:
        check_close(out, expected, "AddNorm(X, Y) in training mode, with self.dropout's mask known: "
                    "LayerNorm(X + dropout(Y))", variants)
    except CheckFailed as failure:
        if failure.misconception is None and diagnose(out, seed):
            raise CheckFailed(str(failure), "dropout_on_residual") from None
        raise
    check_close(silent, F.layer_norm(X, (6,), ref.ln.weight, ref.ln.bias),
                "AddNorm(X, 0) in training mode: with a sublayer output of zeros it must be LayerNorm(X)",
                {"dropout_on_residual": lambda: F.layer_norm(drop(X), (6,), ref.ln.weight, ref.ln.bias)})


# ---- ex03_position_wise_ffn --------------------------------------------------------------

FFN_IN, FFN_HIDDEN, FFN_OUT = 5, 9, 3


def ffn_shape_hint(module):
    dense2 = getattr(module, "dense2", None)
    return "ffn_outputs_input_size" if getattr(dense2, "out_features", None) == FFN_IN else None


@pytest.mark.exercise(FFN, points=1)
def test_layers_and_sizes(PositionWiseFFN):
    module = call_learner(PositionWiseFFN, FFN_IN, FFN_HIDDEN, FFN_OUT,
                          what=f"PositionWiseFFN({FFN_IN}, {FFN_HIDDEN}, {FFN_OUT})")
    for name, kind, sizes in [("dense1", torch.nn.Linear, (FFN_IN, FFN_HIDDEN)), ("relu", torch.nn.ReLU, None),
                              ("dense2", torch.nn.Linear, (FFN_HIDDEN, FFN_OUT))]:
        layer = getattr(module, name, None)
        if not isinstance(layer, kind):
            raise CheckFailed(f"PositionWiseFFN.{name} must be an nn.{kind.__name__}, got {type(layer).__name__}")
        if sizes and (layer.in_features, layer.out_features) != sizes:
            raise CheckFailed(f"PositionWiseFFN.{name} must be nn.Linear{sizes}, got "
                              f"nn.Linear({layer.in_features}, {layer.out_features})", ffn_shape_hint(module))
    expected = sorted(f"{n}.{p}" for n in ["dense1", "dense2"] for p in ["weight", "bias"])
    if sorted(module.state_dict()) != expected:
        raise CheckFailed(f"PositionWiseFFN's parameters must be exactly {expected}, got {sorted(module.state_dict())}")


@pytest.mark.exercise(FFN, points=1)
def test_matches_reference_position_by_position(PositionWiseFFN, reference):
    module, ref = build_pair(PositionWiseFFN, reference.PositionWiseFFN, FFN_IN, FFN_HIDDEN, FFN_OUT,
                             what=f"PositionWiseFFN({FFN_IN}, {FFN_HIDDEN}, {FFN_OUT})", seed=80, draw=normal(1.0),
                             hint=ffn_shape_hint)
    for shape in [(2, 4, FFN_IN), (3, FFN_IN), (2, 2, 3, FFN_IN)]:
        X = randn(*shape, seed=90 + len(shape))
        expected_in = clones(X, requires_grad=True)[0]
        expected = ref(expected_in)
        expected.sum().backward()
        actual_in = clones(X, requires_grad=True)[0]
        out = call_learner(module, actual_in, what=f"PositionWiseFFN.forward(X of shape {shape})")
        with torch.no_grad():
            variants = position_wise_ffn_variants(ref, X)
        check_close(out, expected, f"PositionWiseFFN output for X of shape {shape}", variants)
        call_learner(lambda: out.sum().backward(), what="backward through PositionWiseFFN")
        check_gradients("PositionWiseFFN", [(f"X of shape {shape}", actual_in, expected_in)])
    X = randn(2, 5, FFN_IN, seed=95)
    X2 = X.clone()
    X2[:, 1] += 1.0
    with torch.no_grad():
        moved = (call_learner(module, X2, what="PositionWiseFFN.forward") - call_learner(module, X, what="PositionWiseFFN.forward"))
    if (moved.abs().amax(dim=(0, 2)) > 0).tolist() != [False, True, False, False, False]:
        raise CheckFailed("changing position 1 of X must change output position 1 only")


# ---- ex03_encoder_block ------------------------------------------------------------------

D, HEADS, FFN_HIDDENS, BATCH, N = 12, 3, 20, 3, 6
VALID_LENS = {
    "no valid_lens": None,
    "1-D valid_lens": torch.tensor([6, 2, 4]),
    "2-D valid_lens": torch.tensor([[1, 2, 3, 4, 5, 6], [2, 2, 2, 2, 2, 2], [4, 4, 4, 1, 6, 3]]),
}


def block_args(dropout, use_bias):
    return (D, D, D, D, [D], D, FFN_HIDDENS, HEADS, dropout, use_bias)


def build_block(EncoderBlock, reference, dropout=0.2, use_bias=True, seed=0):
    """The learner's block holding the reference block's random weights (gains and biases too), in eval mode."""
    args = block_args(dropout, use_bias)
    module, ref = build_pair(EncoderBlock, reference.EncoderBlock, *args, what=f"EncoderBlock{args}", seed=1000 * seed,
                             draw=scaled_by_fan_in)
    module.eval()
    ref.eval()
    return module, ref


def call_block(module, X, valid_lens):
    lens = None if valid_lens is None else valid_lens.clone()
    return call_learner(module, X, lens, what="EncoderBlock.forward(X, valid_lens)")


@pytest.mark.exercise(ENCODER, points=1)
@pytest.mark.parametrize("use_bias", [False, True], ids=["use_bias=False", "use_bias=True"])
def test_submodules_and_state_dict(EncoderBlock, reference, use_bias):
    args = block_args(0.1, use_bias)
    module = call_learner(EncoderBlock, *args, what=f"EncoderBlock{args}")
    for name, kind in [("attention", "MultiHeadAttention"), ("addnorm1", "AddNorm"), ("ffn", "PositionWiseFFN"),
                       ("addnorm2", "AddNorm")]:
        child = getattr(module, name, None)
        if type(child).__name__ != kind:
            raise CheckFailed(f"EncoderBlock.{name} must be a {kind}, got {type(child).__name__}")
    expected = sorted(reference.EncoderBlock(*args).state_dict())
    if sorted(module.state_dict()) != expected:
        raise CheckFailed(f"EncoderBlock's state_dict keys must be {expected}, got {sorted(module.state_dict())}")


@pytest.mark.exercise(ENCODER, points=1)
@pytest.mark.parametrize("use_bias", [False, True], ids=["use_bias=False", "use_bias=True"])
@pytest.mark.parametrize("case", list(VALID_LENS))
def test_matches_reference_in_eval_mode(EncoderBlock, reference, use_bias, case):
    module, ref = build_block(EncoderBlock, reference, dropout=0.2, use_bias=use_bias, seed=1)
    X = randn(BATCH, N, D, seed=100)
    valid_lens = VALID_LENS[case]
    with torch.no_grad():
        expected = ref(X.clone(), None if valid_lens is None else valid_lens.clone())
        out = call_block(module, X.clone(), valid_lens)
        again = call_block(module, X.clone(), valid_lens)
    check_close(out, expected, f"EncoderBlock output in eval mode with dropout 0.2 ({case}, use_bias={use_bias})",
                encoder_block_variants(ref, X, valid_lens))
    if not torch.equal(out, again):
        raise CheckFailed("in eval mode two calls of the block on the same input gave different outputs")


@pytest.mark.exercise(ENCODER, points=1)
def test_gradients_match_reference(EncoderBlock, reference):
    module, ref = build_block(EncoderBlock, reference, dropout=0.0, use_bias=True, seed=2)
    module.train()
    ref.train()
    X = randn(BATCH, N, D, seed=110)
    valid_lens = VALID_LENS["1-D valid_lens"]
    upstream = randn(BATCH, N, D, seed=111)
    expected_in = clones(X, requires_grad=True)[0]
    (ref(expected_in, valid_lens.clone()) * upstream).sum().backward()
    actual_in = clones(X, requires_grad=True)[0]
    out = call_block(module, actual_in, valid_lens)
    with torch.no_grad():
        expected = ref(X, valid_lens.clone())
    check_close(out, expected, "EncoderBlock output",
                encoder_block_variants(ref, X, valid_lens))
    call_learner(lambda: (out * upstream).sum().backward(), what="backward through EncoderBlock")
    check_gradients("EncoderBlock", [("X", actual_in, expected_in)], module, ref)


@pytest.mark.exercise(ENCODER, points=1)
def test_valid_positions_ignore_the_padding(EncoderBlock, reference):
    module, ref = build_block(EncoderBlock, reference, seed=3)
    X = randn(BATCH, N, D, seed=120)
    valid_lens = VALID_LENS["1-D valid_lens"]
    padding = torch.arange(N)[None, :] >= valid_lens[:, None]            # (batch, n)
    X2 = X.clone()
    X2[padding] = randn(int(padding.sum()), D, seed=121) * 5
    with torch.no_grad():
        out = call_block(module, X.clone(), valid_lens)
        out2 = call_block(module, X2, valid_lens)
    if not isinstance(out, torch.Tensor) or not isinstance(out2, torch.Tensor) or out.shape != X.shape:
        raise CheckFailed(f"EncoderBlock must return a tensor of X's shape {tuple(X.shape)}")
    if not torch.allclose(out[~padding], out2[~padding], atol=1e-9, rtol=0):
        raise CheckFailed("with 1-D valid_lens, changing X behind the valid lengths changed the outputs at valid positions",
                          diagnose(out, encoder_block_variants(ref, X, valid_lens)))


@pytest.mark.exercise(ENCODER, points=1)
def test_matches_torch_transformer_encoder_layer(EncoderBlock, reference):
    torch_layer = torch.nn.TransformerEncoderLayer(D, HEADS, dim_feedforward=FFN_HIDDENS, dropout=0.2,
                                                   batch_first=True).double()
    randomise(torch_layer, 130, scaled_by_fan_in)
    torch_layer.eval()
    E = D
    sd = torch_layer.state_dict()
    w, b = sd["self_attn.in_proj_weight"], sd["self_attn.in_proj_bias"]
    state = {
        "attention.W_q.weight": w[:E], "attention.W_k.weight": w[E:2 * E], "attention.W_v.weight": w[2 * E:],
        "attention.W_q.bias": b[:E], "attention.W_k.bias": b[E:2 * E], "attention.W_v.bias": b[2 * E:],
        "attention.W_o.weight": sd["self_attn.out_proj.weight"], "attention.W_o.bias": sd["self_attn.out_proj.bias"],
        "addnorm1.ln.weight": sd["norm1.weight"], "addnorm1.ln.bias": sd["norm1.bias"],
        "ffn.dense1.weight": sd["linear1.weight"], "ffn.dense1.bias": sd["linear1.bias"],
        "ffn.dense2.weight": sd["linear2.weight"], "ffn.dense2.bias": sd["linear2.bias"],
        "addnorm2.ln.weight": sd["norm2.weight"], "addnorm2.ln.bias": sd["norm2.bias"],
    }
    args = block_args(0.2, True)
    module = call_learner(EncoderBlock, *args, what=f"EncoderBlock{args}")
    call_learner(module.double, what="EncoderBlock.double()")
    load_state(module, {k: v.clone() for k, v in state.items()}, "EncoderBlock")
    module.eval()
    ref = reference.EncoderBlock(*args).double().eval()
    ref.load_state_dict(state)
    X = randn(BATCH, N, D, seed=140)
    valid_lens = VALID_LENS["1-D valid_lens"]
    padding = torch.arange(N)[None, :] >= valid_lens[:, None]            # True = ignore, PyTorch's convention
    with torch.no_grad():
        expected_full = torch_layer(X, src_key_padding_mask=torch.zeros_like(padding))
        expected = torch_layer(X, src_key_padding_mask=padding)
        out_full = call_block(module, X.clone(), None)
        out = call_block(module, X.clone(), valid_lens)
    check_close(out_full, expected_full, "EncoderBlock against nn.TransformerEncoderLayer with the same weights, no padding",
                encoder_block_variants(ref, X, None))
    valid = ~padding
    if not isinstance(out, torch.Tensor) or out.shape != X.shape:
        raise CheckFailed(f"EncoderBlock must return a tensor of X's shape {tuple(X.shape)}")
    check_close(out[valid], expected[valid], "EncoderBlock with 1-D valid_lens against nn.TransformerEncoderLayer with "
                "a key padding mask, at the valid positions",
                {m: (lambda f=f: f()[valid]) for m, f in encoder_block_variants(ref, X, valid_lens).items()})
