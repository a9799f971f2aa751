"""The generation benchmark (autograder/benchmarks/generation.py) compares what it says it compares.

No timing is asserted: these check that the three generators compute the logits they claim (the
KV-cache decoder equals the same decoder re-run on the whole prefix, SamOut's stepwise generation
equals its full pass), that the decoder is the chapter's CausalTransformer, and that the script runs
at tiny sizes and prints the table's columns.
"""

import pytest
import torch

from autograder.benchmarks import generation
from autograder.references import load_reference

# Its tests share a module-scoped fixture: conftest.ONE_WORKER_MODULES keeps them on one worker.


@pytest.fixture(scope="module")
def chapter():
    return load_reference("06_samout").names


def tokens(batch, n, voc_size, seed):
    return torch.randint(4, voc_size, (batch, n), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("prompt_len", [1, 7, 20])
def test_kv_cache_logits_equal_the_no_cache_logits(prompt_len):
    torch.manual_seed(prompt_len)
    decoder = generation.CausalDecoder(50, 32, 4, 3).double().eval()
    prompt, continuation = tokens(2, prompt_len, 50, 1), tokens(2, 9, 50, 2)
    cached = generation.stepwise_logits(generation.KVCacheGenerator(decoder), prompt, continuation)
    uncached = generation.stepwise_logits(generation.NoCacheGenerator(decoder), prompt, continuation)
    with torch.no_grad():
        full = decoder(torch.cat([prompt, continuation], dim=1))[:, prompt_len - 1:]
    assert cached.shape == (2, 10, 50)
    torch.testing.assert_close(cached, uncached, rtol=1e-10, atol=1e-10)
    torch.testing.assert_close(uncached, full, rtol=1e-10, atol=1e-10)


def test_the_cache_is_written_in_place_and_continues_in_chunks():
    torch.manual_seed(3)
    decoder = generation.CausalDecoder(40, 16, 2, 2).double().eval()
    sequence = tokens(1, 12, 40, 3)
    cache = decoder.new_cache(1, 12)
    keys = cache.keys
    with torch.no_grad():
        chunks = [decoder(sequence[:, a:b], cache) for a, b in [(0, 5), (5, 6), (6, 9), (9, 12)]]
        full = decoder(sequence)
    assert cache.keys is keys and cache.length == 12
    torch.testing.assert_close(torch.cat(chunks, dim=1), full, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="holds 12 positions"):
        decoder(sequence[:, :1], cache)


def test_the_decoder_is_the_chapters_causal_transformer(chapter):
    torch.manual_seed(4)
    theirs = chapter["CausalTransformer"](30, 32, 4, 2).double().eval()
    ours = generation.CausalDecoder(30, 32, 4, 2).double().eval()
    ours.load_state_dict(theirs.state_dict(), strict=True)
    sequence = tokens(2, 11, 30, 4)
    with torch.no_grad():
        torch.testing.assert_close(ours(sequence), theirs(sequence)[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("prompt_len", [1, 13])
def test_samout_stepwise_generation_equals_its_full_pass(chapter, prompt_len):
    torch.manual_seed(5)
    samout = chapter["SamOut"](40, 32, 4, 3).double().eval()
    prompt, continuation = tokens(2, prompt_len, 40, 5), tokens(2, 8, 40, 6)
    stepped = generation.stepwise_logits(generation.SamOutGenerator(samout), prompt, continuation)
    with torch.no_grad():
        full, _ = samout(torch.cat([prompt, continuation], dim=1))
    torch.testing.assert_close(stepped, full[:, prompt_len - 1:], rtol=1e-10, atol=1e-10)


def test_state_sizes_samout_constant_kv_cache_growing(chapter):
    samout, decoder = generation.build_models(chapter["SamOut"], 40, 16, 2, 2, torch.device("cpu"))
    held = {}
    for n in [8, 64]:
        for generator in [generation.SamOutGenerator(samout), generation.KVCacheGenerator(decoder)]:
            with torch.no_grad():
                generator.prefill(tokens(1, n, 40, n), 4)
            held[generator.name, n] = generation.held_bytes(generator.held())
    assert held["SamOut (state)", 8] == held["SamOut (state)", 64] == 2 * 16 * 4       # one running max per layer
    assert held["Transformer, KV cache", 8] == 2 * 2 * 16 * (8 + 4) * 4                 # keys and values, all layers
    assert held["Transformer, KV cache", 64] == 2 * 2 * 16 * (64 + 4) * 4


def test_held_bytes_counts_the_storage_behind_a_view():
    big = torch.zeros(100, 10)
    assert generation.held_bytes([big[-1:], {"again": big[:2]}]) == 100 * 10 * 4


def test_the_script_prints_the_table(capsys):
    generation.main(["--device", "cpu", "--lengths", "8", "16", "--width", "16", "--layers", "2", "--heads", "2",
                     "--vocab", "20", "--new-tokens", "2", "--no-cache-tokens", "2", "--no-cache-max", "8",
                     "--repeats", "1", "--memory-steps", "1"])
    out = capsys.readouterr().out
    header = next(line for line in out.splitlines() if line.split()[:2] == ["context", "generator"])
    for column in ["context", "generator", "timed", "ms/token", "tokens/s", "state", "step peak", "vs KV cache"]:
        assert column in header
    assert "Parameters: SamOut" in out and "Transformer decoder" in out
    rows = [line.split() for line in out.splitlines() if line[:8].strip() in {"8", "16"}]
    assert len(rows) == 6                                                      # 2 lengths x 3 generators
    assert sum("not run above n = 8" in " ".join(row) for row in rows) == 1   # the no-cache decoder at 16
    assert "SamOut generates" in out
