"""Hidden graders of chapter 6, SamOut (solutions/06_samout.ipynb).

Each test is one check of one exercise, worth the points of its marker. Reference values are
computed on clones before the learner's code sees any input. The state that MaxState,
DecoderLayer and SamOut return is never inspected: the graders only pass it back, copy it to
see that a call left it unchanged, and count the numbers it holds. The seed's SamOut, re-typed,
is the reference notebook's ``SeedSamOut``.
"""

import pytest
import torch
import torch.nn as nn

from autograder.probes import (CheckFailed, build_pair, call_learner, check_close, check_gradients, clones, diagnose,
                               in_learner_process, is_parameter, randn, randomise)
from .variants import decoder_layer_variants, feed_forward_variants, max_state_variants, sam_out_variants

MAX_STATE = "ex06_max_state"
FEED_FORWARD = "ex06_feed_forward"
DECODER_LAYER = "ex06_decoder_layer"
SAM_OUT = "ex06_sam_out"
GENERATE = "ex06_generate"

# Devices a module must follow: "meta" runs every op without data, so a tensor created on a
# hard-coded device (or on the CPU by default) fails to meet the input there, even on a laptop.
DEVICES = ["meta"] + (["cuda"] if torch.cuda.is_available() else [])
DTYPES = [torch.float64, torch.float32]
ALPHAS = [0.2, 0.3, 0.7, 0.85]  # never 0.5, where the two branches of the mix are interchangeable


# ---- helpers ------------------------------------------------------------------------------

def draw(name, shape, generator):
    """Random parameters (probes.randomise) for this chapter: alpha from ALPHAS, LayerNorm gains
    near 1, everything else of standard deviation 0.4."""
    if name.endswith("alpha"):
        return torch.tensor(ALPHAS[int(torch.randint(len(ALPHAS), (), generator=generator))], dtype=torch.float64)
    noise = torch.randn(shape, generator=generator, dtype=torch.float64)
    return 1 + 0.3 * noise if name.endswith("layer_norm.weight") else 0.4 * noise


def build(learner_class, reference_class, args, seed, dtype=torch.float64, name=None, hint=None):
    """The reference with random parameters, and the learner's module with the same parameters."""
    what = f"{name or reference_class.__name__}({', '.join(map(str, args))})"
    return build_pair(learner_class, reference_class, *args, what=what, seed=1000 * seed, dtype=dtype, draw=draw,
                      hint=hint)


def forward(module, x, state=None, *, what):
    """Call module(x) or module(x, state); it must return a pair (output, new_state)."""
    result = call_learner(module, x, what=what) if state is None else call_learner(module, x, state, what=what)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise CheckFailed(f"{what} must return a pair (output, new_state), got {type(result).__name__}")
    return result


def check_output(actual, expected, what, variants=None):
    """check_close; in float32 at a tolerance that allows another order of the same operations."""
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if expected.dtype == torch.float32 else {}
    check_close(actual, expected, what, variants, **tolerance)


def snapshot(state):
    """A deep copy of a state, whatever its layout."""
    if isinstance(state, torch.Tensor):
        return state.detach().clone()
    if isinstance(state, (list, tuple)):
        return [snapshot(s) for s in state]
    if isinstance(state, dict):
        return {k: snapshot(v) for k, v in state.items()}
    return state


def unchanged(state, copy) -> bool:
    """Whether ``state`` still holds what ``copy`` (its snapshot) recorded."""
    if isinstance(copy, torch.Tensor):
        return isinstance(state, torch.Tensor) and state.shape == copy.shape and state.dtype == copy.dtype \
            and torch.equal(state.detach(), copy)
    if isinstance(copy, list):
        return isinstance(state, (list, tuple)) and len(state) == len(copy) \
            and all(unchanged(s, c) for s, c in zip(state, copy))
    if isinstance(copy, dict):
        return isinstance(state, dict) and state.keys() == copy.keys() and all(unchanged(state[k], copy[k]) for k in copy)
    return state is copy or state == copy


def state_numel(state) -> int:
    if isinstance(state, torch.Tensor):
        return state.numel()
    if isinstance(state, (list, tuple)):
        return sum(state_numel(s) for s in state)
    if isinstance(state, dict):
        return sum(state_numel(s) for s in state.values())
    return 0


def check_continued_calls(module, x, name, ignores_state=None, chunkings=((1,) * 9, (4, 1, 3, 1), (2, 7))):
    """Calls on consecutive chunks of x, passing the state on, equal the module's own full pass.

    Compared with the module's own full pass, so that a wrong formula costs the points of the
    equivalence checks only. ``ignores_state`` is the misconception a state-free call would be.
    """
    full, _ = forward(module, x, what=f"{name}(x), x of {tuple(x.shape)}")
    full = full.detach()
    one_token_size = state_numel(forward(module, x[:, :1], what=f"{name}(x[:, :1])")[1])
    for sizes in chunkings:
        state, start = None, 0
        for size in sizes:
            chunk = x[:, start:start + size]
            out, state = forward(module, chunk, state, what=f"{name}(x[:, {start}:{start + size}], state)")
            variants = {ignores_state: lambda c=chunk: forward(module, c, what=name)[0]} if ignores_state and start else None
            check_output(out, full[:, start:start + size],
                         f"{name}: continuing with the state on chunks of sizes {list(sizes)}, the output at positions "
                         f"{start}..{start + size - 1} must equal the full pass", variants)
            start += size
        if state_numel(state) != one_token_size:
            raise CheckFailed(f"{name}: the state holds {state_numel(state)} numbers after {x.shape[1]} tokens but "
                              f"{one_token_size} after one token; it must not grow with the sequence")


def check_state_left_unchanged(module, x, other, name, split, misconception):
    """A call leaves the state passed in unchanged, so one state can start two continuations."""
    other = torch.cat([x[:, :split], other[:, split:]], dim=1)      # the same prefix, another continuation
    full_a = forward(module, x, what=f"{name}(x)")[0].detach()
    full_b = forward(module, other, what=f"{name}(x)")[0].detach()
    _, state = forward(module, x[:, :split], what=f"{name}(x[:, :{split}])")
    kept = snapshot(state)
    branch_a, _ = forward(module, x[:, split:], state, what=f"{name}(x[:, {split}:], state)")
    if not unchanged(state, kept):
        raise CheckFailed(f"{name}: a call modified the state passed in; it must build a new state", misconception)
    branch_b, _ = forward(module, other[:, split:], state, what=f"{name}(another continuation, the same state)")
    if not unchanged(state, kept):
        raise CheckFailed(f"{name}: a call modified the state passed in; it must build a new state", misconception)
    check_output(branch_a, full_a[:, split:], f"{name}: the first continuation from a state must equal the full pass")
    check_output(branch_b, full_b[:, split:], f"{name}: a second continuation from the same state must equal its own "
                 "full pass")
    long = torch.cat([x] * 6, dim=1)
    sizes = [state_numel(forward(module, long[:, :n], what=f"{name}(x of length {n})")[1]) for n in (1, long.shape[1])]
    if sizes[0] != sizes[1]:
        raise CheckFailed(f"{name}: the state holds {sizes[1]} numbers after {long.shape[1]} tokens but {sizes[0]} "
                          "after one token; it must not grow with the sequence")


def check_follows_device_and_dtype(make, inputs, name):
    """The module runs on each device in DEVICES and in float64, and continues with its state there."""
    for device in DEVICES:
        module = call_learner(make, what=name)
        module = call_learner(lambda: module.to(device=device, dtype=torch.float64), what=f"{name}.to({device!r})")
        x = inputs(device)
        out, state = forward(module, x, what=f"{name} on {device!r}")
        if not isinstance(out, torch.Tensor) or out.device.type != device or out.dtype != torch.float64:
            raise CheckFailed(f"{name}: on {device!r} in float64 the output must be a float64 tensor on {device!r}, got "
                              f"{getattr(out, 'dtype', type(out))} on {getattr(out, 'device', '?')}")
        more, _ = forward(module, x[:, :2], state, what=f"{name} continued with the state on {device!r}")
        if more.device.type != device or more.dtype != torch.float64:
            raise CheckFailed(f"{name}: continued with the state on {device!r}, the output left the device or the dtype")


# ---- ex06_max_state ---------------------------------------------------------------------------

# (batch, seq, hidden_dim, heads): several head counts, one head, a single token, unequal sizes.
MAX_STATE_SHAPES = [(2, 7, 8, 2), (1, 1, 6, 3), (3, 12, 16, 4), (2, 5, 12, 1), (1, 9, 12, 6)]


@pytest.mark.exercise(MAX_STATE, points=0.5)
def test_max_state_parameters_are_three_bias_free_linears(MaxState):
    module = call_learner(MaxState, 12, 3, what="MaxState(12, 3)")
    for name in ["head0", "head1", "head2"]:
        layer = getattr(module, name, None)
        if not isinstance(layer, nn.Linear) or (layer.in_features, layer.out_features) != (12, 12) or layer.bias is not None:
            raise CheckFailed(f"MaxState.{name} must be nn.Linear(hidden_dim, hidden_dim, bias=False)")
    keys = sorted(module.state_dict())
    if keys != ["head0.weight", "head1.weight", "head2.weight"]:
        raise CheckFailed(f"MaxState's parameters must be exactly head0.weight, head1.weight, head2.weight, got {keys}")


@pytest.mark.exercise(MAX_STATE, points=1)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_max_state_matches_reference(MaxState, reference, dtype):
    for seed, (b, s, hidden, heads) in enumerate(MAX_STATE_SHAPES):
        module, ref = build(MaxState, reference.MaxState, (hidden, heads), seed, dtype)
        x = randn(b, s, hidden, seed=100 + seed, dtype=dtype)
        with torch.no_grad():
            expected = ref(x.clone())[0]
            out, _ = forward(module, x.clone(), what=f"MaxState({hidden}, {heads}) on x of {(b, s, hidden)}")
            check_output(out, expected, f"MaxState({hidden}, {heads}) output, {dtype}, x of shape {(b, s, hidden)}",
                         max_state_variants(ref, x))


@pytest.mark.exercise(MAX_STATE, points=1)
def test_max_state_gradients_match_reference(MaxState, reference):
    module, ref = build(MaxState, reference.MaxState, (12, 3), 11)
    x = randn(2, 8, 12, seed=110)
    upstream = randn(2, 8, 12, seed=111)
    x_ref, = clones(x, requires_grad=True)
    (ref(x_ref)[0] * upstream).sum().backward()
    x_in, = clones(x, requires_grad=True)
    out, _ = forward(module, x_in, what="MaxState(12, 3)")
    check_output(out, ref(x)[0], "MaxState(12, 3) output", max_state_variants(ref, x))
    call_learner(lambda: (out * upstream).sum().backward(), what="backward through MaxState")
    check_gradients("MaxState(12, 3)", [("x", x_in, x_ref)], module, ref)


@pytest.mark.exercise(MAX_STATE, points=0.5)
def test_max_state_is_causal(MaxState, reference):
    module, ref = build(MaxState, reference.MaxState, (12, 3), 12)
    x = randn(2, 10, 12, seed=120)
    changed = x.clone()
    changed[:, 6:] = randn(2, 4, 12, seed=121)
    with torch.no_grad():
        out, _ = forward(module, x, what="MaxState(12, 3)")
        out2, _ = forward(module, changed, what="MaxState(12, 3)")
    if not torch.allclose(out2[:, :6], out[:, :6], rtol=1e-12, atol=1e-12):
        raise CheckFailed("MaxState: changing tokens 6.. changed the outputs at positions 0..5; the running maximum "
                          "must only look back", diagnose(out, max_state_variants(ref, x)))
    if torch.allclose(out2[:, 6:], out[:, 6:]):
        raise CheckFailed("MaxState: changing tokens 6.. must change the outputs at those positions")


@pytest.mark.exercise(MAX_STATE, points=2)
def test_max_state_continued_with_its_state_equals_the_full_pass(MaxState, reference):
    module, _ = build(MaxState, reference.MaxState, (12, 3), 13)
    with torch.no_grad():
        check_continued_calls(module, randn(2, 9, 12, seed=130), "MaxState", "max_state_ignores_state")


@pytest.mark.exercise(MAX_STATE, points=1)
def test_max_state_leaves_the_state_unchanged_and_follows_the_device(MaxState, reference):
    module, _ = build(MaxState, reference.MaxState, (8, 2), 14)
    with torch.no_grad():
        check_state_left_unchanged(module, randn(3, 9, 8, seed=140), randn(3, 9, 8, seed=141), "MaxState", 4,
                                   "max_state_modifies_state")
        check_follows_device_and_dtype(lambda: MaxState(8, 2),
                                       lambda device: torch.randn(2, 5, 8, dtype=torch.float64, device=device),
                                       "MaxState(8, 2)")


# ---- ex06_feed_forward --------------------------------------------------------------------------

@pytest.mark.exercise(FEED_FORWARD, points=1)
def test_feed_forward_parameters(FeedForward):
    for hidden in [8, 7]:
        module = call_learner(FeedForward, hidden, what=f"FeedForward({hidden})")
        half = hidden // 2
        expected = {"ffn1.weight": (half, hidden), "ffn1.bias": (half,), "gate.weight": (half, hidden),
                    "gate.bias": (half,), "ffn2.weight": (hidden, half), "ffn2.bias": (hidden,)}
        shapes = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        if shapes != expected:
            raise CheckFailed(f"FeedForward({hidden}): ffn1 and gate must be Linear(hidden_size, hidden_size // 2) and "
                              f"ffn2 Linear(hidden_size // 2, hidden_size), all with biases; got {shapes}")


@pytest.mark.exercise(FEED_FORWARD, points=1)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_feed_forward_matches_reference(FeedForward, reference, dtype):
    for seed, (shape, hidden) in enumerate([((2, 5), 8), ((3,), 7), ((2, 2, 3), 10)]):
        module, ref = build(FeedForward, reference.FeedForward, (hidden,), 200 + seed, dtype)
        x = randn(*shape, hidden, seed=210 + seed, dtype=dtype) * 2
        x_ref, = clones(x, requires_grad=True)
        expected = ref(x_ref)
        x_in, = clones(x, requires_grad=True)
        out = call_learner(module, x_in, what=f"FeedForward({hidden})")
        check_output(out, expected, f"FeedForward({hidden}) output, {dtype}", feed_forward_variants(ref, x))
        if dtype == torch.float64:
            expected.sum().backward()
            call_learner(lambda: out.sum().backward(), what="backward through FeedForward")
            check_gradients(f"FeedForward({hidden})", [("x", x_in, x_ref)], module, ref)


# ---- ex06_decoder_layer ---------------------------------------------------------------------------

@pytest.mark.exercise(DECODER_LAYER, points=0.5)
def test_decoder_layer_parameters_and_alpha(DecoderLayer, reference):
    module = call_learner(DecoderLayer, 8, 2, what="DecoderLayer(8, 2)")
    keys, expected = sorted(module.state_dict()), sorted(reference.DecoderLayer(8, 2).state_dict())
    alpha = getattr(module, "alpha", None)
    if not is_parameter(alpha) or alpha.shape != () or not alpha.requires_grad:
        raise CheckFailed(f"DecoderLayer.alpha must be an nn.Parameter of shape (), got {type(alpha).__name__}",
                          "alpha_not_learned")
    if alpha.item() != 0.5:
        raise CheckFailed(f"DecoderLayer.alpha must start at 0.5, got {alpha.item():g}", "alpha_not_learned")
    if keys != expected:
        raise CheckFailed(f"DecoderLayer's parameters must be {expected}, got {keys}")
    # By class name, not isinstance against the reference's classes: a layer built from the
    # learner's own MaxState (say, a default argument mixer_layer=MaxState) is just as right.
    for name, kind in [("self_attention", "MaxState"), ("ffn", "FeedForward")]:
        child = getattr(module, name, None)
        if type(child).__name__ != kind:
            raise CheckFailed(f"DecoderLayer.{name} must be a {kind}, got {type(child).__name__} "
                              "(use MaxState, FeedForward, nn.LayerNorm)")
    if not isinstance(getattr(module, "layer_norm", None), nn.LayerNorm):
        raise CheckFailed(f"DecoderLayer.layer_norm must be an nn.LayerNorm, got "
                          f"{type(getattr(module, 'layer_norm', None)).__name__}")
    converted = call_learner(module.double, what="DecoderLayer.double()")
    if converted.alpha.dtype != torch.float64:
        raise CheckFailed("after .double(), alpha must be float64: keep it an nn.Parameter", "alpha_not_learned")


@pytest.mark.exercise(DECODER_LAYER, points=1.5)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_decoder_layer_matches_reference(DecoderLayer, reference, dtype):
    for seed, (b, s, hidden, heads) in enumerate([(2, 6, 8, 2), (1, 9, 12, 3), (3, 4, 6, 1)]):
        module, ref = build(DecoderLayer, reference.DecoderLayer, (hidden, heads), 300 + seed, dtype)
        x = randn(b, s, hidden, seed=310 + seed, dtype=dtype)
        x_ref, = clones(x, requires_grad=True)
        expected = ref(x_ref)[0]
        x_in, = clones(x, requires_grad=True)
        out, _ = forward(module, x_in, what=f"DecoderLayer({hidden}, {heads})")
        with torch.no_grad():
            variants = decoder_layer_variants(ref, x)
            check_output(out, expected, f"DecoderLayer({hidden}, {heads}) output, {dtype}, alpha = {ref.alpha.item():g}",
                         variants)
        if dtype == torch.float64:
            upstream = randn(b, s, hidden, seed=320 + seed)
            (expected * upstream).sum().backward()
            call_learner(lambda: (out * upstream).sum().backward(), what="backward through DecoderLayer")
            if getattr(module.alpha, "grad", None) is None:  # alpha used as a number: not learned
                raise CheckFailed("no gradient reaches DecoderLayer.alpha", "alpha_not_learned")
            check_gradients(f"DecoderLayer({hidden}, {heads})", [("x", x_in, x_ref)], module, ref)


@pytest.mark.exercise(DECODER_LAYER, points=1)
def test_decoder_layer_is_causal_and_continues_with_its_state(DecoderLayer, reference):
    module, _ = build(DecoderLayer, reference.DecoderLayer, (12, 3), 330)
    x = randn(2, 9, 12, seed=331)
    changed = x.clone()
    changed[:, 5:] = randn(2, 4, 12, seed=332)
    with torch.no_grad():
        out, _ = forward(module, x, what="DecoderLayer(12, 3)")
        out2, _ = forward(module, changed, what="DecoderLayer(12, 3)")
        if not torch.allclose(out2[:, :5], out[:, :5], rtol=1e-12, atol=1e-12):
            raise CheckFailed("DecoderLayer: changing tokens 5.. changed the outputs at positions 0..4")
        check_continued_calls(module, x, "DecoderLayer")
        check_state_left_unchanged(module, x, changed, "DecoderLayer", 3, None)


# ---- ex06_sam_out -------------------------------------------------------------------------------

# (voc_size, hidden_size, num_heads, num_layers, batch, seq)
SAM_OUT_SHAPES = [(13, 8, 2, 1, 2, 6), (17, 12, 3, 3, 3, 9), (11, 6, 1, 2, 1, 5)]


def tokens_for(voc_size, batch, seq, seed):
    """Random token ids, the padding id 3 among them."""
    tokens = torch.randint(0, voc_size, (batch, seq), generator=torch.Generator().manual_seed(seed))
    tokens[0, seq // 2] = 3
    return tokens


def build_sam_out(SamOut, reference_class, args, seed, dtype=torch.float64):
    """A SamOut pair; a load that fails on a parameter of em.weight's shape is a separate output head."""
    def hint(module):
        shapes = [tuple(v.shape) for k, v in module.state_dict().items() if k != "em.weight"]
        return "samout_separate_output_head" if tuple(args[:2]) in shapes else None
    return build(SamOut, reference_class, args, seed, dtype, name="SamOut", hint=hint)


@pytest.mark.exercise(SAM_OUT, points=1)
def test_sam_out_parameters_padding_row_and_tied_weights(SamOut, reference):
    for seed in range(3):
        torch.manual_seed(seed)
        module = call_learner(SamOut, 17, 12, 3, 2, what="SamOut(17, 12, 3, 2)")
        em = getattr(module, "em", None)
        if not isinstance(em, nn.Embedding) or em.padding_idx != 3:
            raise CheckFailed("SamOut.em must be nn.Embedding(voc_size, hidden_size, padding_idx=3)", "samout_no_padding_idx")
        if not bool((em.weight[3] == 0).all()):
            raise CheckFailed("row 3 of em.weight (the padding token) must be zero as built", "samout_no_padding_idx")
    ref = reference.SamOut(17, 12, 3, 2)
    extra = sorted(set(module.state_dict()) - set(ref.state_dict()))
    missing = sorted(set(ref.state_dict()) - set(module.state_dict()))
    if extra:
        head = any(tuple(module.state_dict()[k].shape) == (17, 12) for k in extra)
        raise CheckFailed(f"SamOut has parameters the contract does not name: {extra} (tied weights: the logits use "
                          "em.weight, no separate head)", "samout_separate_output_head" if head else None)
    if missing:
        raise CheckFailed(f"SamOut lacks the parameters {missing}")
    layers = getattr(module, "decoder_layers", None)
    if not isinstance(layers, nn.ModuleList) or len(layers) != 2:
        raise CheckFailed("SamOut.decoder_layers must be an nn.ModuleList of num_layers DecoderLayers")
    count, expected = sum(p.numel() for p in module.parameters()), sum(p.numel() for p in ref.parameters())
    if count != expected:
        raise CheckFailed(f"SamOut(17, 12, 3, 2) must have {expected} parameters (tied weights), has {count}")


@pytest.mark.exercise(SAM_OUT, points=1)
@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_sam_out_matches_reference(SamOut, reference, dtype):
    for seed, (voc, hidden, heads, layers, b, s) in enumerate(SAM_OUT_SHAPES):
        args = (voc, hidden, heads, layers)
        module, ref = build_sam_out(SamOut, reference.SamOut, args, 400 + seed, dtype)
        tokens = tokens_for(voc, b, s, 410 + seed)
        expected = ref(tokens.clone())[0]
        logits, _ = forward(module, tokens.clone(), what=f"SamOut{args}")
        with torch.no_grad():
            check_output(logits, expected, f"SamOut{args} logits, {dtype}", sam_out_variants(ref, tokens))
        if dtype == torch.float64:
            # Tied weights: em.weight's gradient has a part from the lookup and one from the logits.
            upstream = randn(b, s, voc, seed=420 + seed)
            (expected * upstream).sum().backward()
            call_learner(lambda: (logits * upstream).sum().backward(), what="backward through SamOut")
            check_gradients(f"SamOut{args}", [], module, ref)


@pytest.mark.exercise(SAM_OUT, points=1)
def test_seed_state_dict_loads_and_gives_the_same_logits(SamOut, reference):
    for seed, (voc, hidden, heads, layers, b, s) in enumerate(SAM_OUT_SHAPES[:2]):
        args = (voc, hidden, heads, layers)
        module, seed_model = build_sam_out(SamOut, reference.SeedSamOut, args, 430 + seed)
        tokens = tokens_for(voc, b, s, 440 + seed)
        with torch.no_grad():
            expected = seed_model(tokens.clone())[0]
            logits, _ = forward(module, tokens.clone(), what=f"SamOut{args}")
            check_output(logits, expected, f"SamOut{args} with the seed's state_dict: logits must equal the seed's",
                         sam_out_variants(seed_model, tokens))


@pytest.mark.exercise(SAM_OUT, points=1)
def test_sam_out_is_causal_and_continues_with_its_state(SamOut, reference):
    module, _ = build_sam_out(SamOut, reference.SamOut, (17, 12, 3, 2), 450)
    tokens = tokens_for(17, 2, 9, 451)
    changed = tokens.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 17
    with torch.no_grad():
        logits, _ = forward(module, tokens, what="SamOut(17, 12, 3, 2)")
        logits2, _ = forward(module, changed, what="SamOut(17, 12, 3, 2)")
        if not torch.allclose(logits2[:, :5], logits[:, :5], rtol=1e-12, atol=1e-12):
            raise CheckFailed("SamOut: changing tokens 5.. changed the logits at positions 0..4")
        check_continued_calls(module, tokens, "SamOut")


@pytest.mark.exercise(SAM_OUT, points=1)
def test_sam_out_leaves_the_state_unchanged(SamOut, reference):
    module, _ = build_sam_out(SamOut, reference.SamOut, (17, 12, 3, 3), 460)
    tokens = tokens_for(17, 3, 9, 461)
    other = (tokens + 5) % 17
    with torch.no_grad():
        check_state_left_unchanged(module, tokens, other, "SamOut", 4, "samout_state_modified_in_place")


@pytest.mark.exercise(SAM_OUT, points=1)
def test_sam_out_follows_device_and_dtype(SamOut):
    with torch.no_grad():
        check_follows_device_and_dtype(lambda: SamOut(13, 8, 2, 2),
                                       lambda device: torch.zeros(2, 5, dtype=torch.long, device=device),
                                       "SamOut(13, 8, 2, 2)")


# ---- ex06_generate --------------------------------------------------------------------------------

class StateToken:
    """The state a Recording model returns: generate must hand it back, never look inside."""

    def __init__(self, inner, call):
        self.inner, self.call = inner, call


class Recording(nn.Module):
    """Wraps a model; records each call's tokens, the state it came with and whether grad was on."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.calls = []

    def forward(self, tokens, state=None):
        self.calls.append({"tokens": tokens.detach().clone(), "state": state, "grad": torch.is_grad_enabled()})
        inner = state.inner if isinstance(state, StateToken) else None
        logits, new_state = self.model(tokens, inner)
        return logits, StateToken(new_state, len(self.calls))


class FixedLogits(nn.Module):
    """A model whose next-token logits are always the same; its state counts the tokens read."""

    def __init__(self, logits):
        super().__init__()
        self.register_buffer("logits", logits)
        self.unused = nn.Parameter(torch.zeros(1, dtype=logits.dtype))   # so that model.parameters() is not empty

    def forward(self, tokens, state=None):
        b, s = tokens.shape
        return self.logits.expand(b, s, -1).clone(), (state or 0) + s


class PositionDependent(nn.Module):
    """A model whose best next token depends on the token and on its position: its state is the
    number of tokens read, so a generate that drops the state decodes other tokens."""

    def __init__(self, voc_size):
        super().__init__()
        self.voc_size = voc_size
        self.unused = nn.Parameter(torch.zeros(1, dtype=torch.float64))   # so that model.parameters() is not empty

    def forward(self, tokens, state=None):
        read = state or 0
        positions = torch.arange(read, read + tokens.shape[1]).unsqueeze(0)                 # (1, seq)
        best = (3 * tokens + 5 * positions + 1) % self.voc_size                             # (batch, seq)
        logits = torch.nn.functional.one_hot(best, self.voc_size).double() * 4.0
        return logits, read + tokens.shape[1]


def call_generate(generate, model, prompt, n, **kwargs):
    arguments = ", ".join([f"max_new_tokens={n}"] + [f"{k}={v}" for k, v in kwargs.items()])
    out = call_learner(generate, model, prompt.clone(), n, **kwargs, what=f"generate(model, prompt, {arguments})")
    b, p = prompt.shape
    if not isinstance(out, torch.Tensor) or out.shape != (b, p + n) or out.dtype != torch.long:
        raise CheckFailed(f"generate must return a LongTensor of shape (batch, prompt_len + max_new_tokens) = "
                          f"{(b, p + n)}, got {getattr(out, 'dtype', type(out).__name__)} {tuple(getattr(out, 'shape', ()))}")
    if not torch.equal(out[:, :p], prompt):
        raise CheckFailed("the result of generate must start with the prompt")
    return out


def sampled_frequencies(generate, logits, n_tokens, batch=3000, seed=0, **kwargs):
    torch.manual_seed(seed)
    prompt = torch.full((batch, 2), 4, dtype=torch.long)
    out = call_generate(generate, FixedLogits(logits), prompt, n_tokens, **kwargs)[:, 2:]
    return torch.bincount(out.flatten(), minlength=len(logits)).double() / out.numel(), out.numel()


def matches(frequencies, probabilities, count, sigmas=5.0):
    """Within `sigmas` binomial standard deviations of each probability (plus a rounding margin)."""
    spread = sigmas * (probabilities * (1 - probabilities) / count).sqrt() + 2e-3
    return bool(((frequencies - probabilities).abs() <= spread).all())


@pytest.mark.exercise(GENERATE, points=1)
def test_generate_reads_the_prompt_once_then_one_token_per_step(generate, reference):
    torch.manual_seed(500)
    model = randomise(reference.SamOut(15, 8, 2, 2).double(), 5000, draw)
    prompt = torch.randint(4, 15, (3, 5), generator=torch.Generator().manual_seed(501))
    recording = in_learner_process(Recording, model)  # where generate calls it
    n = 6
    out = call_generate(generate, recording, prompt, n)
    calls = recording.calls
    if not calls or calls[0]["state"] is not None or not torch.equal(calls[0]["tokens"], prompt):
        raise CheckFailed("generate must first call the model once on the whole prompt, without a state")
    if any(c["grad"] for c in calls):
        raise CheckFailed("generate must call the model under torch.no_grad()")
    for i, call in enumerate(calls[1:], start=1):
        length = call["tokens"].shape[1]
        if call["state"] is None:
            raise CheckFailed(f"call {i + 1} of the model came without a state; after the prompt, each step feeds the "
                              "new token with the state returned by the previous call",
                              "generate_rereads_sequence" if length > 1 else "generate_drops_state")
        if length != 1:
            raise CheckFailed(f"call {i + 1} of the model fed {length} tokens; after the prompt, feed one token per step",
                              "generate_rereads_sequence")
        if not isinstance(call["state"], StateToken) or call["state"].call != i:
            raise CheckFailed(f"call {i + 1} of the model did not pass back the state returned by call {i}")
        if not torch.equal(call["tokens"][:, 0], out[:, prompt.shape[1] + i - 1]):
            raise CheckFailed(f"call {i + 1} must feed the token generated at step {i}")
    if len(calls) not in (n, n + 1):
        raise CheckFailed(f"generating {n} tokens should take {n} calls of the model (the prompt, then one per new token "
                          f"but the last), got {len(calls)}")
    empty = call_generate(generate, Recording(model), prompt, 0)
    if not torch.equal(empty, prompt):
        raise CheckFailed("generate with max_new_tokens=0 must return the prompt")


@pytest.mark.exercise(GENERATE, points=1)
def test_generate_with_top_k_one_is_greedy(generate, reference):
    model = randomise(reference.SamOut(15, 8, 2, 2).double(), 5100, draw)
    prompt = torch.randint(4, 15, (4, 3), generator=torch.Generator().manual_seed(511))
    greedy = prompt.clone()
    with torch.no_grad():
        for _ in range(10):
            greedy = torch.cat([greedy, model(greedy)[0][:, -1].argmax(dim=-1, keepdim=True)], dim=1)
    positional = PositionDependent(11)
    positional_greedy = prompt.clone()
    for _ in range(10):
        positional_greedy = torch.cat([positional_greedy, positional(positional_greedy)[0][:, -1].argmax(-1, keepdim=True)], 1)
    for model, expected, temperature in [(model, greedy, 1.0), (model, greedy, 0.7), (positional, positional_greedy, 1.0)]:
        recording = in_learner_process(Recording, model)
        out = call_generate(generate, recording, prompt, 10, temperature=temperature, top_k=1)
        if not torch.equal(out, expected):
            dropped = any(c["state"] is None for c in recording.calls[1:]) and \
                all(c["tokens"].shape[1] == 1 for c in recording.calls[1:])
            raise CheckFailed(f"with top_k=1 (temperature {temperature}) generate must pick the most likely token at "
                              "every step, as greedy decoding with full passes does",
                              "generate_drops_state" if dropped else None)


@pytest.mark.exercise(GENERATE, points=1)
def test_generate_never_samples_outside_the_top_k(generate):
    logits = torch.tensor([0.3, 2.0, -1.0, 1.6, 0.0, 1.2, -0.5, 0.9, -2.0, 0.4], dtype=torch.float64)
    for k in [3, 5]:
        frequencies, count = sampled_frequencies(generate, logits, 2, seed=520 + k, top_k=k)
        top = torch.topk(logits, k).indices
        outside = torch.ones(len(logits), dtype=torch.bool)
        outside[top] = False
        if frequencies[outside].sum() > 0:
            raise CheckFailed(f"with top_k={k}, generate sampled tokens outside the {k} largest logits",
                              "generate_top_k_wrong")
        expected = torch.zeros_like(logits)
        expected[top] = torch.softmax(logits[top], dim=0)
        if not matches(frequencies, expected, count):
            raise CheckFailed(f"with top_k={k}, the tokens must be sampled from the softmax of the {k} largest logits; "
                              f"frequencies {[round(f, 3) for f in frequencies.tolist()]}", "generate_top_k_wrong")


@pytest.mark.exercise(GENERATE, points=1)
def test_generate_divides_the_logits_by_the_temperature(generate):
    logits = torch.tensor([2.0, 1.0, 0.0, -1.0, 0.5], dtype=torch.float64)
    for temperature in [0.5, 2.0]:
        frequencies, count = sampled_frequencies(generate, logits, 2, seed=530, temperature=temperature)
        if matches(frequencies, torch.softmax(logits / temperature, dim=0), count):
            continue
        multiplied = matches(frequencies, torch.softmax(logits * temperature, dim=0), count)
        raise CheckFailed(f"at temperature {temperature} the sampled frequencies "
                          f"{[round(f, 3) for f in frequencies.tolist()]} do not follow softmax(logits / temperature)",
                          "generate_temperature_multiplied" if multiplied else None)
