"""Hidden graders of chapter 2, multi-head attention (solutions/02_multi_head_attention.ipynb).

Each test is one check of one exercise, worth the points of its marker. Reference values
are computed on clones before the learner's code sees any input. The reference layer is
d2l 0.17's MultiHeadAttention; load_from_torch is checked against torch.nn.MultiheadAttention.
"""

import pytest
import torch

from autograder.probes import (CheckFailed, build_pair, call_learner, check_close, check_gradients, clones, diagnose,
                               in_learner_process, load_state, randn, randomise, scaled_by_fan_in)
from .variants import (load_from_torch_variants, mha_variants, transpose_output_variants,
                       transpose_qkv_variants)

TRANSPOSE_QKV = "ex02_transpose_qkv"
TRANSPOSE_OUTPUT = "ex02_transpose_output"
MHA = "ex02_multi_head_attention"
LOAD = "ex02_load_from_torch"

# (batch, n, num_hiddens, num_heads): one head, several heads, batch 1 to 4, n != num_hiddens.
TRANSPOSE_SHAPES = [(1, 2, 4, 2), (3, 5, 12, 3), (2, 7, 8, 1), (4, 3, 16, 8), (2, 6, 12, 4)]


# ---- ex02_transpose_qkv ------------------------------------------------------------------

@pytest.mark.exercise(TRANSPOSE_QKV, points=1)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_transpose_qkv_matches_reference(transpose_qkv, reference, dtype):
    for seed, (batch, n, num_hiddens, num_heads) in enumerate(TRANSPOSE_SHAPES):
        X = randn(batch, n, num_hiddens, seed=seed, dtype=dtype)
        expected = reference.transpose_qkv(X.clone(), num_heads)
        what = f"transpose_qkv(X of shape {tuple(X.shape)}, num_heads={num_heads})"
        actual = call_learner(transpose_qkv, X.clone(), num_heads, what=what)
        check_close(actual, expected, what, transpose_qkv_variants(X, num_heads))


@pytest.mark.exercise(TRANSPOSE_QKV, points=1)
def test_entry_b_times_heads_plus_i_is_head_i_of_sequence_b(transpose_qkv):
    batch, n, num_hiddens, num_heads = 3, 4, 12, 3
    p = num_hiddens // num_heads
    X = randn(batch, n, num_hiddens, seed=40)
    out = call_learner(transpose_qkv, X.clone(), num_heads, what="transpose_qkv(X, 3)")
    variants = transpose_qkv_variants(X, num_heads)
    if not isinstance(out, torch.Tensor) or out.shape != (batch * num_heads, n, p):
        raise CheckFailed(f"transpose_qkv(X of shape {tuple(X.shape)}, 3) must have shape "
                          f"{(batch * num_heads, n, p)}, got {getattr(out, 'shape', type(out).__name__)}")
    for b in range(batch):
        for i in range(num_heads):
            if not torch.equal(out[b * num_heads + i], X[b, :, i * p:(i + 1) * p]):
                raise CheckFailed(f"entry {b * num_heads + i} must be head {i} of sequence {b}, "
                                  f"that is X[{b}, :, {i * p}:{(i + 1) * p}]", diagnose(out, variants))


# ---- ex02_transpose_output ---------------------------------------------------------------

@pytest.mark.exercise(TRANSPOSE_OUTPUT, points=1)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_transpose_output_matches_reference_and_undoes_transpose_qkv(transpose_output, reference, dtype):
    for seed, (batch, n, num_hiddens, num_heads) in enumerate(TRANSPOSE_SHAPES):
        heads = randn(batch * num_heads, n, num_hiddens // num_heads, seed=seed, dtype=dtype)
        expected = reference.transpose_output(heads.clone(), num_heads)
        what = f"transpose_output(X of shape {tuple(heads.shape)}, num_heads={num_heads})"
        actual = call_learner(transpose_output, heads.clone(), num_heads, what=what)
        check_close(actual, expected, what, transpose_output_variants(heads, num_heads))
        X = randn(batch, n, num_hiddens, seed=seed + 50, dtype=dtype)
        split = reference.transpose_qkv(X, num_heads)
        back = call_learner(transpose_output, split.clone(), num_heads, what=what)
        check_close(back, X, f"transpose_output(transpose_qkv(X, {num_heads}), {num_heads}), which must be X",
                    transpose_output_variants(split, num_heads))


@pytest.mark.exercise(TRANSPOSE_OUTPUT, points=1)
def test_head_i_of_sequence_b_goes_back_to_its_features(transpose_output):
    batch, n, p, num_heads = 2, 5, 3, 4
    heads = randn(batch * num_heads, n, p, seed=41)
    out = call_learner(transpose_output, heads.clone(), num_heads, what="transpose_output(X, 4)")
    variants = transpose_output_variants(heads, num_heads)
    if not isinstance(out, torch.Tensor) or out.shape != (batch, n, num_heads * p):
        raise CheckFailed(f"transpose_output(X of shape {tuple(heads.shape)}, 4) must have shape "
                          f"{(batch, n, num_heads * p)}, got {getattr(out, 'shape', type(out).__name__)}")
    for b in range(batch):
        for i in range(num_heads):
            if not torch.equal(out[b, :, i * p:(i + 1) * p], heads[b * num_heads + i]):
                raise CheckFailed(f"features {i * p}..{(i + 1) * p - 1} of sequence {b} must be entry "
                                  f"{b * num_heads + i} (head {i} of sequence {b})", diagnose(out, variants))


# ---- ex02_multi_head_attention -----------------------------------------------------------

# Cross-attention sizes: query_size, key_size and value_size all different.
KEY_SIZE, QUERY_SIZE, VALUE_SIZE, NUM_HIDDENS, NUM_HEADS = 7, 5, 3, 12, 3
BATCH, N_Q, N_K = 3, 4, 6
VALID_LENS = {
    "no valid_lens": None,
    "1-D valid_lens": torch.tensor([2, 6, 4]),
    "2-D valid_lens": torch.tensor([[1, 2, 3, 6], [6, 5, 4, 3], [2, 2, 5, 1]]),
}


def build(MultiHeadAttention, reference, key_size=KEY_SIZE, query_size=QUERY_SIZE, value_size=VALUE_SIZE,
          num_hiddens=NUM_HIDDENS, num_heads=NUM_HEADS, dropout=0.0, bias=True, seed=0, dtype=torch.float64):
    """The learner's layer holding the reference layer's (random) weights, both in eval mode."""
    args = (key_size, query_size, value_size, num_hiddens, num_heads, dropout)
    module, ref = build_pair(MultiHeadAttention, reference.MultiHeadAttention, *args, bias=bias,
                             what=f"MultiHeadAttention{args + (bias,)}", seed=1000 * seed, dtype=dtype,
                             draw=scaled_by_fan_in,
                             hint=lambda module: split_before_projection(module, num_hiddens, num_heads))
    module.eval()
    ref.eval()
    return module, ref


def split_before_projection(module, num_hiddens, num_heads):
    """The seed's layout: projections Linear(head_dim, head_dim) applied after splitting the inputs."""
    p = num_hiddens // num_heads
    W_q = getattr(module, "W_q", None)
    shape = getattr(getattr(W_q, "weight", None), "shape", None)
    return "heads_split_before_projection" if shape == (p, p) and p != num_hiddens else None


def inputs(seed, dtype=torch.float64, key_size=KEY_SIZE, query_size=QUERY_SIZE, value_size=VALUE_SIZE,
           batch=BATCH, n_q=N_Q, n_k=N_K):
    queries = randn(batch, n_q, query_size, seed=seed, dtype=dtype)
    keys = randn(batch, n_k, key_size, seed=seed + 1, dtype=dtype)
    values = randn(batch, n_k, value_size, seed=seed + 2, dtype=dtype)
    return queries, keys, values


def call_mha(module, queries, keys, values, valid_lens, num_heads=NUM_HEADS):
    """Call the learner's forward; when valid_lens break it, find out whether they lack the per-head repeat."""
    what = "MultiHeadAttention.forward(queries, keys, values, valid_lens)"
    lens = None if valid_lens is None else valid_lens.clone()
    try:
        return call_learner(module, queries, keys, values, lens, what=what)
    except CheckFailed as failure:
        if valid_lens is None or num_heads == 1:
            raise
        try:
            with torch.no_grad():
                call_learner(module, queries, keys, values, valid_lens.repeat_interleave(num_heads, dim=0), what=what)
        except CheckFailed:
            raise failure from None
        raise CheckFailed(f"{failure}; it runs when valid_lens are given once per head",
                          "valid_lens_not_repeated") from None


def stored_weights(module):
    weights = getattr(module, "attention_weights", None)
    return weights.detach() if isinstance(weights, torch.Tensor) else weights


@pytest.mark.exercise(MHA, points=1)
@pytest.mark.parametrize("bias", [False, True], ids=["bias=False", "bias=True"])
def test_parameters_follow_the_d2l_layout(MultiHeadAttention, bias):
    args = (KEY_SIZE, QUERY_SIZE, VALUE_SIZE, NUM_HIDDENS, NUM_HEADS, 0.1)
    module = call_learner(MultiHeadAttention, *args, bias=bias, what=f"MultiHeadAttention{args + (bias,)}")
    hint = split_before_projection(module, NUM_HIDDENS, NUM_HEADS)
    for name, size in [("W_q", QUERY_SIZE), ("W_k", KEY_SIZE), ("W_v", VALUE_SIZE), ("W_o", NUM_HIDDENS)]:
        layer = getattr(module, name, None)
        if not isinstance(layer, torch.nn.Linear):
            raise CheckFailed(f"MultiHeadAttention.{name} must be an nn.Linear, got {type(layer).__name__}")
        if (layer.in_features, layer.out_features) != (size, NUM_HIDDENS):
            raise CheckFailed(f"MultiHeadAttention.{name} must map {size} features to num_hiddens = {NUM_HIDDENS}, "
                              f"got nn.Linear({layer.in_features}, {layer.out_features})", hint)
        if (layer.bias is not None) != bias:
            raise CheckFailed(f"MultiHeadAttention.{name} must {'have' if bias else 'have no'} bias when bias={bias}")
    expected = sorted(f"{n}.{p}" for n in ["W_q", "W_k", "W_v", "W_o"] for p in (["weight", "bias"] if bias else ["weight"]))
    if sorted(module.state_dict()) != expected:
        raise CheckFailed(f"MultiHeadAttention's parameters must be exactly {expected}, got {sorted(module.state_dict())}")
    count = sum(p.numel() for p in module.parameters())
    expected_count = (QUERY_SIZE + KEY_SIZE + VALUE_SIZE) * NUM_HIDDENS + NUM_HIDDENS ** 2 + (4 * NUM_HIDDENS if bias else 0)
    if count != expected_count:
        raise CheckFailed(f"MultiHeadAttention must have {expected_count} parameters (d2l's layout), got {count}", hint)


@pytest.mark.exercise(MHA, points=1)
@pytest.mark.parametrize("bias", [False, True], ids=["bias=False", "bias=True"])
@pytest.mark.parametrize("case", list(VALID_LENS))
def test_cross_attention_matches_reference(MultiHeadAttention, reference, bias, case):
    module, ref = build(MultiHeadAttention, reference, bias=bias, seed=1)
    queries, keys, values = inputs(10)
    valid_lens = VALID_LENS[case]
    with torch.no_grad():
        expected = ref(*clones(queries, keys, values), None if valid_lens is None else valid_lens.clone())
        out = call_mha(module, *clones(queries, keys, values), valid_lens)
    variants = mha_variants(ref, NUM_HEADS, queries, keys, values, valid_lens)
    check_close(out, expected, f"MultiHeadAttention output ({case}, bias={bias}; keys != values, n_q != n_k)", variants)
    check_close(stored_weights(module), ref.attention_weights,
                f"MultiHeadAttention.attention_weights ({case}), shape (batch * num_heads, n_q, n_k)",
                {m: (lambda f=f: f()[1]) for m, f in variants.items()})


@pytest.mark.exercise(MHA, points=1)
def test_gradients_match_reference(MultiHeadAttention, reference):
    num_hiddens, num_heads = 8, 4      # heads of width 2
    module, ref = build(MultiHeadAttention, reference, num_hiddens=num_hiddens, num_heads=num_heads, seed=2)
    module.train()                     # dropout is 0: training mode computes the same function
    ref.train()
    queries, keys, values = inputs(20)
    valid_lens = VALID_LENS["2-D valid_lens"]
    upstream = randn(BATCH, N_Q, num_hiddens, seed=21)
    expected_in = clones(queries, keys, values, requires_grad=True)
    (ref(*expected_in, valid_lens.clone()) * upstream).sum().backward()
    actual_in = clones(queries, keys, values, requires_grad=True)
    out = call_mha(module, *actual_in, valid_lens, num_heads=num_heads)
    with torch.no_grad():
        expected = ref(queries, keys, values, valid_lens.clone())
    check_close(out, expected, "output with 2-D valid_lens",
                mha_variants(ref, num_heads, queries, keys, values, valid_lens))
    call_learner(lambda: (out * upstream).sum().backward(), what="backward through MultiHeadAttention")
    check_gradients("MultiHeadAttention", zip(["queries", "keys", "values"], actual_in, expected_in), module, ref)


@pytest.mark.exercise(MHA, points=1)
def test_float32_and_dropout_only_in_training(MultiHeadAttention, reference):
    dtype, dropout = torch.float32, 0.3
    module, ref = build(MultiHeadAttention, reference, dropout=dropout, seed=3, dtype=dtype)
    queries, keys, values = inputs(30, dtype=dtype)
    valid_lens = VALID_LENS["1-D valid_lens"]
    with torch.no_grad():
        expected = ref(*clones(queries, keys, values), valid_lens.clone())
        first = call_mha(module, *clones(queries, keys, values), valid_lens)
        second = call_mha(module, *clones(queries, keys, values), valid_lens)
    if isinstance(first, torch.Tensor) and first.dtype != dtype:
        raise CheckFailed(f"a float32 layer on float32 inputs must give float32, got {first.dtype}")
    if isinstance(first, torch.Tensor) and isinstance(second, torch.Tensor) and not torch.equal(first, second):
        raise CheckFailed(f"in eval mode, with dropout={dropout}, two calls on the same inputs gave different outputs",
                          "attention_dropout_in_eval")
    check_close(first, expected, f"output in eval mode with dropout={dropout} (float32)",
                mha_variants(ref, NUM_HEADS, queries, keys, values, valid_lens))
    # Training mode: dropout on the attention weights, one draw of d2l's shape (batch * h, n_q, n_k).
    module.train()
    ref.train()
    with torch.no_grad(), torch.random.fork_rng(devices=[]):
        torch.manual_seed(7)
        expected = ref(*clones(queries, keys, values), valid_lens.clone())
        torch.manual_seed(7)
        out = call_mha(module, *clones(queries, keys, values), valid_lens)
    check_close(out, expected, f"output in training mode with dropout={dropout} and a fixed seed "
                "(dropout applies to the attention weights)")


@pytest.mark.exercise(MHA, points=1)
def test_heads_are_independent(MultiHeadAttention, reference):
    module, ref = build(MultiHeadAttention, reference, seed=4)
    p = NUM_HIDDENS // NUM_HEADS
    state = ref.state_dict()
    state["W_o.weight"] = torch.eye(NUM_HIDDENS, dtype=torch.float64)   # W_o the identity: the heads side by side
    state["W_o.bias"] = torch.zeros(NUM_HIDDENS, dtype=torch.float64)
    load_state(module, state, "MultiHeadAttention")
    queries, keys, values = inputs(40)
    with torch.no_grad():
        before = call_mha(module, *clones(queries, keys, values), None)
        for head in range(NUM_HEADS):
            changed = dict(state)
            changed["W_q.weight"] = state["W_q.weight"].clone()
            changed["W_q.weight"][head * p:(head + 1) * p] += randn(p, QUERY_SIZE, seed=41 + head)
            load_state(module, changed, "MultiHeadAttention")
            after = call_mha(module, *clones(queries, keys, values), None)
            moved = (after - before).abs().amax(dim=(0, 1)) > 1e-9            # (num_hiddens,)
            own = torch.zeros(NUM_HIDDENS, dtype=torch.bool)
            own[head * p:(head + 1) * p] = True
            if moved[~own].any() or not moved[own].any():
                ref.load_state_dict(state)
                raise CheckFailed(f"changing head {head}'s rows {head * p}..{(head + 1) * p - 1} of W_q must change only "
                                  f"features {head * p}..{(head + 1) * p - 1} of the output before W_o; features "
                                  f"{moved.nonzero().flatten().tolist()} changed",
                                  diagnose(before, mha_variants(ref, NUM_HEADS, queries, keys, values)))


@pytest.mark.exercise(MHA, points=1)
@pytest.mark.parametrize("case", ["1-D valid_lens", "2-D valid_lens"])
def test_valid_lens_hide_keys_in_every_head(MultiHeadAttention, reference, case):
    module, ref = build(MultiHeadAttention, reference, seed=5)
    queries, keys, values = inputs(50)
    valid_lens = VALID_LENS[case]
    with torch.no_grad():
        call_mha(module, queries, keys, values, valid_lens)
    weights = stored_weights(module)
    variants = {m: (lambda f=f: f()[1]) for m, f in mha_variants(ref, NUM_HEADS, queries, keys, values, valid_lens).items()}
    shape = (BATCH * NUM_HEADS, N_Q, N_K)
    if not isinstance(weights, torch.Tensor) or weights.shape != shape:
        raise CheckFailed(f"attention_weights must be kept after forward, with shape (batch * num_heads, n_q, n_k) = "
                          f"{shape}, got {getattr(weights, 'shape', type(weights).__name__)}")
    lens = valid_lens if valid_lens.dim() == 2 else valid_lens[:, None].expand(BATCH, N_Q)
    hidden = torch.arange(N_K) >= lens.repeat_interleave(NUM_HEADS, dim=0)[..., None]   # (batch * h, n_q, n_k)
    if (weights[hidden].abs() > 1e-6).any():
        rows = sorted({int(r) for r in (hidden & (weights.abs() > 1e-6)).nonzero()[:, 0]})
        raise CheckFailed(f"with {case}, keys at or after a valid length must get zero weight in every head; entries "
                          f"{rows[:6]} of attention_weights (entry b * num_heads + i is head i of sequence b) do not",
                          diagnose(weights, variants))
    if not torch.allclose(weights.sum(-1), torch.ones(shape[:2], dtype=weights.dtype)):
        raise CheckFailed("each query's attention weights must sum to one in every head", diagnose(weights, variants))


@pytest.mark.exercise(MHA, points=1)
@pytest.mark.parametrize("case", ["1-D valid_lens", "2-D valid_lens"])
def test_output_does_not_depend_on_padded_keys(MultiHeadAttention, reference, case):
    module, ref = build(MultiHeadAttention, reference, seed=6)
    queries, keys, values = inputs(60)
    valid_lens = VALID_LENS[case]
    # Keys and values after the longest valid length of each sequence are padding for every query.
    longest = valid_lens if valid_lens.dim() == 1 else valid_lens.amax(dim=1)
    padded = torch.arange(N_K)[None, :] >= longest[:, None]            # (batch, n_k)
    keys2, values2 = keys.clone(), values.clone()
    keys2[padded] = randn(int(padded.sum()), KEY_SIZE, seed=61) * 5
    values2[padded] = randn(int(padded.sum()), VALUE_SIZE, seed=62) * 5
    with torch.no_grad():
        out = call_mha(module, *clones(queries, keys, values), valid_lens)
        out2 = call_mha(module, queries.clone(), keys2, values2, valid_lens)
    if not isinstance(out, torch.Tensor) or not isinstance(out2, torch.Tensor) or out.shape != (BATCH, N_Q, NUM_HIDDENS):
        raise CheckFailed(f"the output must be a tensor of shape (batch, n_q, num_hiddens) = {(BATCH, N_Q, NUM_HIDDENS)}")
    if not torch.allclose(out, out2, atol=1e-9, rtol=0):
        raise CheckFailed(f"with {case}, changing the keys and values behind every valid length changed the output",
                          diagnose(out, mha_variants(ref, NUM_HEADS, queries, keys, values, valid_lens)))


@pytest.mark.exercise(MHA, points=1)
def test_keys_and_values_are_not_swapped(MultiHeadAttention, reference):
    size = 6                           # key_size == value_size, so that a swap runs, but keys != values
    module, ref = build(MultiHeadAttention, reference, key_size=size, value_size=size, seed=7)
    queries, keys, values = inputs(70, key_size=size, value_size=size)
    valid_lens = VALID_LENS["1-D valid_lens"]
    with torch.no_grad():
        expected = ref(*clones(queries, keys, values), valid_lens.clone())
        out = call_mha(module, *clones(queries, keys, values), valid_lens)
    check_close(out, expected, "output with key_size == value_size and keys != values",
                mha_variants(ref, NUM_HEADS, queries, keys, values, valid_lens))


# ---- ex02_load_from_torch ----------------------------------------------------------------

EMBED_DIM, TORCH_HEADS = 12, 3


def torch_module(seed, dtype=torch.float64):
    """An nn.MultiheadAttention with random weights and biases (PyTorch starts its biases at zero)."""
    module = torch.nn.MultiheadAttention(EMBED_DIM, TORCH_HEADS, bias=True, batch_first=True).to(dtype)
    return randomise(module, 1000 * seed, scaled_by_fan_in).eval()


def loaded_layer(load_from_torch, reference, torch_mha, dtype):
    args = (EMBED_DIM, EMBED_DIM, EMBED_DIM, EMBED_DIM, TORCH_HEADS, 0.0)

    def make():
        return reference.MultiHeadAttention(*args, bias=True).to(dtype)
    # Built where the learner's code runs: load_from_torch fills it in place.
    mha = in_learner_process(reference.MultiHeadAttention, *args, bias=True).to(dtype)
    initial = {k: v.clone() for k, v in mha.state_dict().items()}
    result = call_learner(load_from_torch, mha, torch_mha, what="load_from_torch(mha, torch_mha)")
    mha.eval()
    return mha, result, make, initial


@pytest.mark.exercise(LOAD, points=1)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=str)
def test_outputs_match_torch(load_from_torch, reference, dtype):
    torch_mha = torch_module(80, dtype)
    mha, _, make, initial = loaded_layer(load_from_torch, reference, torch_mha, dtype)
    X = randn(2, 5, EMBED_DIM, seed=81, dtype=dtype)
    queries = randn(3, 4, EMBED_DIM, seed=82, dtype=dtype)
    keys = randn(3, 7, EMBED_DIM, seed=83, dtype=dtype)
    values = randn(3, 7, EMBED_DIM, seed=84, dtype=dtype)
    for what, (q, k, v) in [("self-attention", (X, X, X)), ("cross-attention, keys != values, n_q != n_k", (queries, keys, values))]:
        with torch.no_grad():
            expected = torch_mha(q, k, v, need_weights=False)[0]
            out = mha(q, k, v, None)
        check_close(out, expected, f"the loaded layer's output against nn.MultiheadAttention's ({what}, {dtype})",
                    load_from_torch_variants(make, initial, torch_mha, q, k, v))


@pytest.mark.exercise(LOAD, points=1)
def test_key_padding_mask_is_valid_lens(load_from_torch, reference):
    torch_mha = torch_module(90)
    mha, _, make, initial = loaded_layer(load_from_torch, reference, torch_mha, torch.float64)
    queries = randn(4, 3, EMBED_DIM, seed=91)
    keys = randn(4, 6, EMBED_DIM, seed=92)
    values = randn(4, 6, EMBED_DIM, seed=93)
    valid_lens = torch.tensor([3, 6, 1, 5])
    padding = torch.arange(6)[None, :] >= valid_lens[:, None]     # True = ignore, PyTorch's convention
    with torch.no_grad():
        expected, averaged = torch_mha(queries, keys, values, key_padding_mask=padding)
        out = mha(queries, keys, values, valid_lens)
    check_close(out, expected, "the loaded layer with 1-D valid_lens against nn.MultiheadAttention with a key padding mask",
                load_from_torch_variants(make, initial, torch_mha, queries, keys, values, valid_lens))
    check_close(mha.attention_weights.reshape(4, TORCH_HEADS, 3, 6).mean(dim=1), averaged,
                "the loaded layer's weights averaged over the heads against nn.MultiheadAttention's weights")


@pytest.mark.exercise(LOAD, points=1)
def test_torch_module_is_unchanged_and_mha_is_returned(load_from_torch, reference):
    torch_mha = in_learner_process(torch_module, 95)  # where load_from_torch could change it
    before = {k: v.clone() for k, v in torch_mha.state_dict().items()}
    parameters = dict(torch_mha.named_parameters())
    mha, result, _, _ = loaded_layer(load_from_torch, reference, torch_mha, torch.float64)
    if result is not mha:
        raise CheckFailed(f"load_from_torch(mha, torch_mha) must return mha, got {type(result).__name__}")

    def unchanged():
        now = torch_mha.state_dict()
        return sorted(now) == sorted(before) and all(torch.equal(now[k], before[k]) for k in before)

    if not unchanged():
        raise CheckFailed("load_from_torch must leave torch_mha's parameters unchanged")
    if dict(torch_mha.named_parameters()).keys() != parameters.keys() or \
            any(p is not parameters[n] or not p.requires_grad for n, p in torch_mha.named_parameters()):
        raise CheckFailed("load_from_torch must leave torch_mha's parameters in place, still trainable")
    with torch.no_grad():
        for p in mha.parameters():
            p.add_(1.0)
    if not unchanged():
        raise CheckFailed("mha must hold copies of torch_mha's values: changing mha's parameters afterwards "
                          "changed torch_mha's (they share memory)")
