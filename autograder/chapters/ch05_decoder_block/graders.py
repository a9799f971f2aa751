"""Hidden graders of chapter 5, the decoder block (solutions/05_decoder_block.ipynb).

Each test is one check of one exercise, worth the points of its marker. Reference values are
computed before the learner's code sees its inputs (on clones, and on states of their own: a
decoder block writes into the state it is given). The property the chapter proves is graded
for the block and for the whole decoder: with dropout 0, eval-mode decoding one token at a time
through the cache equals the training-mode pass, position by position, and an eval-mode pass
over the whole target without the cache does not. Graders use norm_shape = [num_hiddens].
"""

import math

import pytest
import torch

from autograder.probes import CheckFailed, build_pair, call_learner, check_close, check_gradients, clones, generator, randn
from .variants import (cached_decoding_variants, decoder_block_dropout_variants, decoder_block_variants,
                       positional_encoding_variants, table, transformer_decoder_variants)

DECODER_BLOCK = "ex05_decoder_block"
POSITIONAL_ENCODING = "ex05_positional_encoding"
TRANSFORMER_DECODER = "ex05_transformer_decoder"

SUBLAYERS = ["attention1", "addnorm1", "attention2", "addnorm2", "ffn", "addnorm3"]
PE_TOLERANCE = 1e-4  # the table may be computed in float32, as d2l does: up to 1e-4 off at position 999


def check_encodings(actual, expected, what, variants=None):
    """check_close at the tolerance of a float32 table."""
    check_close(actual, expected, what, variants, atol=PE_TOLERANCE, rtol=0)


def new_state(enc_outputs, enc_valid_lens, slots):
    return [enc_outputs, enc_valid_lens, [None] * slots]


def call_block(block, X, state, what):
    result = call_learner(block, X, state, what=what)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise CheckFailed(f"{what} must return a pair (output, state)")
    return result


# ---- ex05_decoder_block ------------------------------------------------------------------------

BLOCK_ARGS = dict(key_size=12, query_size=12, value_size=12, num_hiddens=12, norm_shape=[12], ffn_num_input=12,
                  ffn_num_hiddens=20, num_heads=3)


def build_block(DecoderBlock, reference, dropout=0.0, i=1, seed=0):
    what = f"DecoderBlock(12, 12, 12, 12, [12], 12, 20, 3, {dropout}, {i})"
    block, ref = build_pair(DecoderBlock, reference.DecoderBlock, *BLOCK_ARGS.values(), dropout, i, what=what, seed=seed)
    return block, ref, what


def block_inputs(seed, n_dec=5, n_enc=7, lens=(7, 4)):
    X = randn(2, n_dec, 12, seed=seed)
    enc_outputs = randn(2, n_enc, 12, seed=seed + 1)
    return X, enc_outputs, torch.tensor(lens)


@pytest.mark.exercise(DECODER_BLOCK, points=0.5)
def test_sublayers_and_state_dict(DecoderBlock, reference):
    block = call_learner(DecoderBlock, *BLOCK_ARGS.values(), 0.1, 0, what="DecoderBlock(12, ..., 3, 0.1, 0)")
    ref = reference.DecoderBlock(*BLOCK_ARGS.values(), 0.1, 0)
    for name in SUBLAYERS:
        if not isinstance(getattr(block, name, None), torch.nn.Module):
            raise CheckFailed(f"DecoderBlock.{name} must be a submodule")
    keys, expected = sorted(block.state_dict()), sorted(ref.state_dict())
    if keys != expected:
        raise CheckFailed(f"DecoderBlock's state_dict keys must be {expected}, got {keys}")


@pytest.mark.exercise(DECODER_BLOCK, points=1)
@pytest.mark.parametrize("case", ["n_enc == n_dec, 2-D enc_valid_lens", "n_enc != n_dec"])
def test_block_training_pass_matches_reference(DecoderBlock, reference, case):
    block, ref, what = build_block(DecoderBlock, reference, seed=10)
    block.train()
    ref.train()
    if case == "n_enc != n_dec":
        X, enc_outputs, lens = block_inputs(11)
    else:
        X, enc_outputs, _ = block_inputs(12, n_dec=6, n_enc=6)
        lens = torch.tensor([[6, 5, 6, 4, 6, 6], [2, 3, 3, 1, 3, 2]])
    upstream = randn(*X.shape, seed=13)
    expected_in = clones(X, enc_outputs, requires_grad=True)
    expected, _ = ref(expected_in[0], new_state(expected_in[1], lens, 3))
    (expected * upstream).sum().backward()
    with torch.no_grad():
        variants = {m: f() for m, f in decoder_block_variants(ref, X, new_state(enc_outputs, lens, 3)).items()}
    actual_in = clones(X, enc_outputs, requires_grad=True)
    state = new_state(actual_in[1], lens, 3)
    out, returned = call_block(block, actual_in[0], state, f"{what}.forward(X, state) in training mode")
    if returned is not state:
        raise CheckFailed("DecoderBlock.forward must return the state it was given (updated in place)")
    check_close(out, expected, f"{what} training-mode output ({case})", variants)
    call_learner(lambda: (out * upstream).sum().backward(), what="backward through DecoderBlock")
    check_gradients("DecoderBlock", zip(["X", "enc_outputs"], actual_in, expected_in), block, ref)


@pytest.mark.exercise(DECODER_BLOCK, points=1)
def test_training_self_attention_is_causal(DecoderBlock, reference):
    block, _, what = build_block(DecoderBlock, reference, seed=20)
    block.train()
    X, enc_outputs, lens = block_inputs(21, n_dec=6)
    with torch.no_grad():
        out, _ = call_block(block, X.clone(), new_state(enc_outputs, lens, 3), f"{what}.forward in training mode")
        for t in (0, 2, 4):
            later = X.clone()
            later[:, t + 1:] = randn(2, 5 - t, 12, seed=22 + t)
            out2, _ = call_block(block, later, new_state(enc_outputs, lens, 3), f"{what}.forward in training mode")
            if not torch.allclose(out2[:, :t + 1], out[:, :t + 1], atol=1e-10):
                raise CheckFailed(f"in training mode, changing the target after position {t} changed the outputs up "
                                  f"to position {t}: the self-attention must be causal (dec_valid_lens 1..num_steps)",
                                  "decoder_no_causal_mask")


@pytest.mark.exercise(DECODER_BLOCK, points=0.5)
def test_padded_encoder_positions_are_ignored(DecoderBlock, reference):
    block, _, what = build_block(DecoderBlock, reference, seed=30)
    X, enc_outputs, _ = block_inputs(31)
    lens = torch.tensor([3, 5])
    padded = enc_outputs.clone()
    padded[0, 3:] = randn(4, 12, seed=32) * 10
    padded[1, 5:] = randn(2, 12, seed=33) * 10
    for mode in ("train", "eval"):
        getattr(block, mode)()
        with torch.no_grad():
            out, _ = call_block(block, X.clone(), new_state(enc_outputs, lens, 3), f"{what}.forward in {mode} mode")
            out2, _ = call_block(block, X.clone(), new_state(padded, lens, 3), f"{what}.forward in {mode} mode")
        if not torch.allclose(out, out2, atol=1e-10):
            raise CheckFailed(f"in {mode} mode, encoder outputs beyond enc_valid_lens changed the block's output",
                              "decoder_enc_valid_lens_ignored")


@pytest.mark.exercise(DECODER_BLOCK, points=2)
def test_cache_grows_by_one_step_and_holds_the_inputs(DecoderBlock, reference):
    block, _, what = build_block(DecoderBlock, reference, i=1, seed=40)
    block.eval()
    X, enc_outputs, lens = block_inputs(41, n_dec=4)
    for prefix in (None, randn(2, 3, 12, seed=42)):
        state = new_state(enc_outputs, lens, 3)
        state[2][1] = prefix
        inputs, outputs = ([] if prefix is None else [prefix]), []
        for t in range(4):
            with torch.no_grad():
                out, state = call_block(block, X[:, t:t + 1].clone(), state, f"{what}.forward(one token) in eval mode")
            inputs.append(X[:, t:t + 1])
            outputs.append(out)
            cache = state[2][1]
            if cache is None:
                wrong = "cache_wrong_block" if any(c is not None for c in (state[2][0], state[2][2])) \
                    else "cache_not_updated"
                raise CheckFailed("after a step, the block's cache state[2][i] must hold its inputs so far", wrong)
            if state[2][0] is not None or state[2][2] is not None:
                raise CheckFailed("block i may write only its own cache slot state[2][i]", "cache_wrong_block")
            expected = torch.cat(inputs, dim=1)
            if cache.shape != expected.shape:
                not_updated = "cache_not_updated" if cache.shape[1] == 1 else None
                raise CheckFailed(f"after {t + 1} steps the cache must have shape {tuple(expected.shape)}, got "
                                  f"{tuple(cache.shape)}: it grows by one position per step", not_updated)
            if not torch.allclose(cache, expected):
                stored_outputs = out.shape == cache[:, -1:].shape and torch.allclose(cache[:, -1:], out)
                raise CheckFailed("the cache must hold the block's inputs (the keys and values of its self-attention)",
                                  "cache_stores_outputs" if stored_outputs else None)


@pytest.mark.exercise(DECODER_BLOCK, points=1.5)
def test_cached_steps_equal_the_training_pass(DecoderBlock, reference):
    block, _, what = build_block(DecoderBlock, reference, i=0, seed=50)
    X, enc_outputs, lens = block_inputs(51, n_dec=6)
    with torch.no_grad():
        block.train()
        training, _ = call_block(block, X.clone(), new_state(enc_outputs, lens, 1), f"{what}.forward in training mode")
        block.eval()
        state = new_state(enc_outputs, lens, 1)
        steps = []
        for t in range(6):
            out, state = call_block(block, X[:, t:t + 1].clone(), state, f"{what}.forward(one token) in eval mode")
            steps.append(out)
        whole, _ = call_block(block, X.clone(), new_state(enc_outputs, lens, 1), f"{what}.forward in eval mode")
    cached = torch.cat(steps, dim=1)
    if cached.shape != training.shape:
        raise CheckFailed("decoding one token at a time must give one output per token")
    differs = (cached - training).abs().amax(dim=(0, 2)) > 1e-9
    if differs.any():
        raise CheckFailed(f"with dropout 0, eval-mode decoding one token at a time through the cache differs from "
                          f"the training pass at positions {differs.nonzero().flatten().tolist()}")
    if torch.allclose(whole[:, :-1], training[:, :-1], atol=1e-9):
        raise CheckFailed("in eval mode without a cache, the whole target is decoded without a causal mask "
                          "(dec_valid_lens None, as in d2l): its outputs cannot equal the training pass's")


@pytest.mark.exercise(DECODER_BLOCK, points=0.5)
def test_dropout_acts_where_d2l_puts_it(DecoderBlock, reference):
    block, ref, what = build_block(DecoderBlock, reference, dropout=0.3, seed=60)
    block.train()
    ref.train()
    X, enc_outputs, lens = block_inputs(61)
    torch.manual_seed(62)
    expected, _ = ref(X.clone(), new_state(enc_outputs, lens, 3))
    variants = decoder_block_dropout_variants(ref, X, new_state(enc_outputs, lens, 3), seed=62)
    torch.manual_seed(62)
    out, _ = call_block(block, X.clone(), new_state(enc_outputs, lens, 3), f"{what}.forward in training mode")
    check_close(out, expected, f"{what} in training mode from the reference's seed (dropout on the attention weights "
                "and on each sublayer's output, inside AddNorm)", variants)


# ---- ex05_positional_encoding --------------------------------------------------------------------

@pytest.mark.exercise(POSITIONAL_ENCODING, points=1)
@pytest.mark.parametrize("num_hiddens", [4, 32])
def test_table_is_interleaved_sine_and_cosine(PositionalEncoding, num_hiddens):
    module = call_learner(PositionalEncoding, num_hiddens, 0.2, what=f"PositionalEncoding({num_hiddens}, 0.2)")
    module.eval()
    X = randn(2, 1000, num_hiddens, seed=num_hiddens)  # every position of the default max_len
    expected = X + table(1000, num_hiddens)
    with torch.no_grad():
        out = call_learner(module, X.clone(), what="PositionalEncoding.forward(X) in eval mode")
    check_encodings(out, expected, f"PositionalEncoding({num_hiddens}) for positions 0..999",
                    positional_encoding_variants(X))


@pytest.mark.exercise(POSITIONAL_ENCODING, points=1)
def test_offset_shifts_the_positions(PositionalEncoding):
    module = call_learner(PositionalEncoding, 16, 0.0, what="PositionalEncoding(16, 0.0)")
    module.eval()
    P = table(1000, 16)
    for offset, n in [(0, 5), (1, 3), (7, 1), (500, 4), (996, 4)]:
        X = randn(3, n, 16, seed=offset)
        with torch.no_grad():
            out = call_learner(module, X.clone(), offset=offset, what=f"PositionalEncoding.forward(X, offset={offset})")
        check_encodings(out, X + P[offset:offset + n], f"PositionalEncoding with offset={offset} and {n} steps",
                        positional_encoding_variants(X, offset))
    with torch.no_grad():
        out = call_learner(module, randn(1, 2, 16, seed=3), 4, what="PositionalEncoding.forward(X, 4)")
    check_encodings(out, randn(1, 2, 16, seed=3) + P[4:6], "PositionalEncoding.forward(X, 4): offset as the second argument")


@pytest.mark.exercise(POSITIONAL_ENCODING, points=1)
def test_table_is_not_a_weight_and_output_follows_the_input(PositionalEncoding):
    module = call_learner(PositionalEncoding, 8, 0.1, what="PositionalEncoding(8, 0.1)")
    keys = list(module.state_dict())
    if keys:
        raise CheckFailed(f"PositionalEncoding's state_dict must be empty (the table is a constant), got {keys}",
                          "pe_table_in_state_dict")
    module.eval()
    P = table(6, 8)
    for dtype in (torch.float64, torch.float32, torch.bfloat16):
        X = randn(2, 6, 8, seed=1, dtype=dtype)
        with torch.no_grad():
            out = call_learner(module, X.clone(), what=f"PositionalEncoding.forward on {dtype} input")
        if not isinstance(out, torch.Tensor) or out.dtype != dtype or out.device != X.device:
            raise CheckFailed(f"a {dtype} input must give a {dtype} output on its device, got "
                              f"{getattr(out, 'dtype', type(out).__name__)}", "pe_dtype_fixed")
        if not torch.allclose(out.double(), (X.double() + P), atol=0.05 if dtype == torch.bfloat16 else PE_TOLERANCE):
            raise CheckFailed(f"PositionalEncoding on a {dtype} input must add the table's values")
    call_learner(module.double, what="PositionalEncoding.double()")
    X = randn(2, 6, 8, seed=2, dtype=torch.float32)
    with torch.no_grad():
        out = call_learner(module, X, what="PositionalEncoding.double().forward(float32 input)")
    if out.dtype != torch.float32:
        raise CheckFailed("after .double(), a float32 input must still give a float32 output", "pe_dtype_fixed")


@pytest.mark.exercise(POSITIONAL_ENCODING, points=1)
def test_dropout_after_the_addition_in_training(PositionalEncoding):
    p, n = 0.25, 40_000
    module = call_learner(PositionalEncoding, 8, p, what=f"PositionalEncoding(8, {p})")
    X = randn(8, 625, 8, seed=4)  # 40000 elements
    added = X + table(625, 8)
    module.train()
    torch.manual_seed(5)
    with torch.no_grad():
        out = call_learner(module, X.clone(), what="PositionalEncoding.forward in training mode")
    if not isinstance(out, torch.Tensor) or out.shape != X.shape:
        raise CheckFailed("PositionalEncoding in training mode must return a tensor of X's shape")
    zero = out == 0
    rate, tolerance = zero.double().mean().item(), 5 * math.sqrt(p * (1 - p) / n)
    if abs(rate - p) > tolerance:
        raise CheckFailed(f"in training mode with dropout {p}, {rate:.1%} of the output elements are zero; expected "
                          f"{p:.0%} (dropout after adding the encodings)")
    if not torch.allclose(out[~zero], added[~zero] / (1 - p), atol=PE_TOLERANCE):
        raise CheckFailed("in training mode the kept elements must be (X + P) / (1 - dropout): dropout acts on the "
                          "sum")
    module.eval()
    with torch.no_grad():
        out = module(X.clone())
    check_encodings(out, added, "PositionalEncoding in eval mode (no dropout)")


# ---- ex05_transformer_decoder ----------------------------------------------------------------------

DECODER_ARGS = (13, 12, 12, 12, 12, [12], 12, 20, 3, 2)  # vocab, sizes, norm_shape, ffn, heads, layers


def build_decoder(TransformerDecoder, reference, dropout=0.0, seed=0):
    what = f"TransformerDecoder(13, 12, 12, 12, 12, [12], 12, 20, 3, 2, {dropout})"
    decoder, ref = build_pair(TransformerDecoder, reference.TransformerDecoder, *DECODER_ARGS, dropout, what=what,
                              seed=seed)
    return decoder, ref, what


def decoder_inputs(seed, n_dec=6):
    tokens = torch.randint(0, 13, (2, n_dec), generator=generator(seed))
    return tokens, randn(2, 7, 12, seed=seed + 1), torch.tensor([7, 3])


def call_decoder(decoder, tokens, state, what):
    result = call_learner(decoder, tokens, state, what=what)
    if not (isinstance(result, tuple) and len(result) == 2):
        raise CheckFailed(f"{what} must return a pair (logits, state)")
    return result


@pytest.mark.exercise(TRANSFORMER_DECODER, points=1)
def test_layers_state_dict_and_init_state(TransformerDecoder, reference):
    decoder = call_learner(TransformerDecoder, *DECODER_ARGS, 0.1, what="TransformerDecoder(13, ..., 2, 0.1)")
    ref = reference.TransformerDecoder(*DECODER_ARGS, 0.1)
    embedding, dense, blks = (getattr(decoder, n, None) for n in ("embedding", "dense", "blks"))
    if not isinstance(embedding, torch.nn.Embedding) or (embedding.num_embeddings, embedding.embedding_dim) != (13, 12):
        raise CheckFailed("TransformerDecoder.embedding must be nn.Embedding(vocab_size, num_hiddens)")
    if not isinstance(dense, torch.nn.Linear) or (dense.in_features, dense.out_features) != (12, 13):
        raise CheckFailed("TransformerDecoder.dense must be nn.Linear(num_hiddens, vocab_size)")
    if not isinstance(blks, torch.nn.Sequential) or [n for n, _ in blks.named_children()] != ["block0", "block1"]:
        raise CheckFailed("TransformerDecoder.blks must be an nn.Sequential of children named block0, block1, ...")
    if not isinstance(getattr(decoder, "pos_encoding", None), torch.nn.Module):
        raise CheckFailed("TransformerDecoder.pos_encoding must be a PositionalEncoding module")
    keys, expected = sorted(decoder.state_dict()), sorted(ref.state_dict())
    if keys != expected:
        raise CheckFailed(f"TransformerDecoder's state_dict keys must be d2l's {expected}, got {keys}")
    enc_outputs, lens = randn(2, 5, 12, seed=1), torch.tensor([5, 2])
    state = call_learner(decoder.init_state, enc_outputs, lens, what="TransformerDecoder.init_state(enc_outputs, enc_valid_lens)")
    if not (isinstance(state, list) and len(state) == 3 and state[0] is enc_outputs and state[1] is lens
            and state[2] == [None, None]):
        raise CheckFailed("init_state must return [enc_outputs, enc_valid_lens, [None] * num_layers]")


@pytest.mark.exercise(TRANSFORMER_DECODER, points=1)
def test_decoder_training_pass_matches_reference(TransformerDecoder, reference):
    decoder, ref, what = build_decoder(TransformerDecoder, reference, seed=70)
    decoder.train()
    ref.train()
    tokens, enc_outputs, lens = decoder_inputs(71)
    upstream = randn(2, 6, 13, seed=72)
    expected_enc = clones(enc_outputs, requires_grad=True)[0]
    expected, _ = ref(tokens.clone(), [expected_enc, lens, [None, None]])
    (expected * upstream).sum().backward()
    with torch.no_grad():
        variants = {m: f() for m, f in transformer_decoder_variants(ref, tokens, [enc_outputs, lens, None]).items()}
    actual_enc = clones(enc_outputs, requires_grad=True)[0]
    state = [actual_enc, lens, [None, None]]
    logits, returned = call_decoder(decoder, tokens.clone(), state, f"{what}.forward(X, state) in training mode")
    check_close(logits, expected, f"{what} training-mode logits", variants)
    if not isinstance(returned, list) or len(returned) != 3 or not all(
            isinstance(c, torch.Tensor) and c.shape == (2, 6, 12) for c in returned[2]):
        raise CheckFailed("forward must return the state, with each block's cache holding that block's inputs")
    call_learner(lambda: (logits * upstream).sum().backward(), what="backward through TransformerDecoder")
    check_gradients("TransformerDecoder's logits", [("enc_outputs", actual_enc, expected_enc)], decoder, ref)


@pytest.mark.exercise(TRANSFORMER_DECODER, points=1)
def test_cached_decoding_equals_the_training_pass(TransformerDecoder, reference):
    decoder, ref, what = build_decoder(TransformerDecoder, reference, seed=80)
    tokens, enc_outputs, lens = decoder_inputs(81, n_dec=7)
    with torch.no_grad():
        ref.eval()
        variants = {m: f() for m, f in cached_decoding_variants(ref, tokens, enc_outputs, lens).items()}
        decoder.train()
        training, _ = call_decoder(decoder, tokens.clone(), [enc_outputs, lens, [None, None]],
                                   f"{what}.forward in training mode")
        decoder.eval()
        state = [enc_outputs, lens, [None, None]]
        steps = []
        for t in range(tokens.shape[1]):
            logits, state = call_decoder(decoder, tokens[:, t:t + 1].clone(), state, f"{what}.forward(one token) in eval mode")
            steps.append(logits)
        whole, _ = call_decoder(decoder, tokens.clone(), [enc_outputs, lens, [None, None]], f"{what}.forward in eval mode")
    cached = torch.cat(steps, dim=1)
    check_close(cached, training, "logits of eval-mode decoding one token at a time through the cache, against the "
                "training pass (dropout 0)", variants)
    if torch.allclose(whole[:, :-1], training[:, :-1], atol=1e-9):
        raise CheckFailed("in eval mode without a cache, the whole target is decoded without a causal mask: its "
                          "logits cannot equal the training pass's")


@pytest.mark.exercise(TRANSFORMER_DECODER, points=1)
def test_every_block_cache_grows_by_one_per_step(TransformerDecoder, reference):
    decoder, _, what = build_decoder(TransformerDecoder, reference, seed=90)
    decoder.eval()
    tokens, enc_outputs, lens = decoder_inputs(91, n_dec=4)
    state = call_learner(decoder.init_state, enc_outputs, lens, what="init_state")
    for t in range(4):
        with torch.no_grad():
            logits, state = call_decoder(decoder, tokens[:, t:t + 1].clone(), state, f"{what}.forward(one token)")
        if not isinstance(logits, torch.Tensor) or logits.shape != (2, 1, 13):
            raise CheckFailed("decoding one token must give logits of shape (batch, 1, vocab_size)")
        sizes = [None if c is None else tuple(c.shape) for c in state[2]]
        if sizes != [(2, t + 1, 12)] * 2:
            raise CheckFailed(f"after {t + 1} steps every block's cache must have shape (2, {t + 1}, 12), got {sizes}")
