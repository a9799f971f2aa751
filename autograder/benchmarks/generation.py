"""Benchmark: time and memory per generated token against context length, SamOut against a Transformer.

    python -m autograder.benchmarks.generation [--device cpu|cuda] [--lengths N N ...] [--width W]
        [--layers L] [--heads H] [--vocab V] [--new-tokens T] [--no-cache-tokens T] [--no-cache-max N]
        [--repeats R] [--memory-steps S] [--threads T] [--cpu-time]

Three generators of the same width, depth and (nearly) the same parameter count, each given a random
prompt of n tokens (the context) and then asked for new tokens one at a time, greedily:

- **SamOut** (chapter 6's reference, solutions/06_samout.ipynb) with its state: each new token
  continues the running maxima of the layers, a state whose size does not depend on n;
- **KV cache**: ``CausalDecoder``, a pre-norm causal Transformer decoder, with a key-value cache
  preallocated for the whole generation and written in place; each new token attends to n keys;
- **no cache**: the same decoder and weights, re-running the whole prefix for every new token, as the
  seed author's generator does (each token costs a full forward pass over n tokens); being slow, it
  is timed in one run of ``--no-cache-tokens`` tokens (4 by default) after one untimed step.

The decoder has the layout of the chapter's ``CausalTransformer`` (same attribute names, so the same
state_dict): ``qkv`` and ``proj`` of 4 h^2 weights against MaxState's 3 h^2, and an MLP h -> h/4 -> h
of h^2 / 2 against the gated feed-forward network's 3 h^2 / 2, so both models have about 4.5 h^2
weights per layer and share the size of the tied embedding.

Per context length and generator the table gives the time per new token (the fastest of ``--repeats``
runs of T timed steps after a prefill and two untimed steps, the generators taking turns; wall clock
on a CPU, or this process's CPU time with ``--cpu-time``; CUDA events on a GPU), the tokens per
second, and two memory figures, both measured:

- **state**: the bytes of the tensor storages the generator holds between steps (SamOut's
  state, the KV cache as allocated for prompt + new tokens, the no-cache generator's token ids);
- **step peak**: the peak memory allocated while a few more steps run, beyond what was allocated
  before them (on CUDA ``torch.cuda.max_memory_allocated``; on a CPU the peak of
  ``torch.profiler``'s allocation log), i.e. the transient memory of a step.

The weights are the same for every length and are not counted in either. The last column is each
generator's tokens per second over the KV-cache decoder's at the same length. It prints a table and
asserts nothing; ``tests/test_generation_benchmark.py`` checks that the three generators compute
what they claim.
"""

from __future__ import annotations

import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

from autograder.benchmarks.measure import elapsed_seconds, peak_memory

CHAPTER = "06_samout"


# --- a plain causal Transformer decoder with a preallocated key-value cache -------------------------

def sinusoidal_table(n: int, width: int) -> torch.Tensor:
    """(n, width) float32 sinusoidal encodings of positions 0 .. n - 1 (sin on even, cos on odd channels)."""
    position = torch.arange(n, dtype=torch.float32).unsqueeze(1)                       # (n, 1)
    frequency = 10000.0 ** (-torch.arange(0, width, 2, dtype=torch.float32) / width)   # (width / 2,)
    table = torch.zeros(n, width)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: width // 2])
    return table


class KVCache:
    """Keys and values of every layer for `capacity` positions, allocated once and written in place.

    keys, values: (num_layers, batch, num_heads, capacity, head_size); positions 0 .. length - 1 are filled.
    """

    def __init__(self, num_layers, batch, num_heads, capacity, head_size, device, dtype):
        shape = (num_layers, batch, num_heads, capacity, head_size)
        self.keys = torch.zeros(shape, device=device, dtype=dtype)
        self.values = torch.zeros(shape, device=device, dtype=dtype)
        self.capacity, self.length = capacity, 0


class CachedSelfAttention(nn.Module):
    """Multi-head causal self-attention through F.scaled_dot_product_attention, with an optional KVCache."""

    def __init__(self, hidden_size, num_heads):
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(hidden_size, 3 * hidden_size, bias=False)
        self.proj = nn.Linear(hidden_size, hidden_size, bias=False)

    def forward(self, x, cache=None, layer=0):
        b, s, h = x.shape
        q, k, v = self.qkv(x).reshape(b, s, 3, self.num_heads, h // self.num_heads).permute(2, 0, 3, 1, 4)  # 3 x (b, heads, s, d)
        past = 0 if cache is None else cache.length
        if cache is not None:
            cache.keys[layer, :, :, past:past + s] = k                                # write the new positions in place
            cache.values[layer, :, :, past:past + s] = v
            k, v = cache.keys[layer, :, :, :past + s], cache.values[layer, :, :, :past + s]   # (b, heads, past + s, d)
        if past == 0:
            out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif s == 1:
            out = F.scaled_dot_product_attention(q, k, v)                            # one query sees every key so far
        else:
            mask = torch.ones(s, past + s, dtype=torch.bool, device=x.device).tril(past)  # query i sees keys <= past + i
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(out.transpose(1, 2).reshape(b, s, h))


class CachedBlock(nn.Module):
    """Pre-norm: x + attention(norm1(x)), then x + mlp(norm2(x)), the MLP h -> h/4 -> h."""

    def __init__(self, hidden_size, num_heads):
        super().__init__()
        self.norm1 = nn.LayerNorm(hidden_size)
        self.attention = CachedSelfAttention(hidden_size, num_heads)
        self.norm2 = nn.LayerNorm(hidden_size)
        self.mlp = nn.Sequential(nn.Linear(hidden_size, hidden_size // 4), nn.GELU(),
                                 nn.Linear(hidden_size // 4, hidden_size))

    def forward(self, x, cache=None, layer=0):
        x = x + self.attention(self.norm1(x), cache, layer)
        return x + self.mlp(self.norm2(x))


class CausalDecoder(nn.Module):
    """A decoder-only Transformer with tied embeddings and sinusoidal positions.

    The state_dict is that of chapter 6's CausalTransformer. forward(tokens) is the full causal pass;
    forward(tokens, cache) continues from the cache's positions and fills it.
    """

    def __init__(self, voc_size, hidden_size, num_heads, num_layers):
        super().__init__()
        self.num_heads = num_heads
        self.em = nn.Embedding(voc_size, hidden_size, padding_idx=3)
        self.blocks = nn.ModuleList(CachedBlock(hidden_size, num_heads) for _ in range(num_layers))
        self.norm = nn.LayerNorm(hidden_size)
        self.register_buffer("positions", sinusoidal_table(1024, hidden_size), persistent=False)

    def new_cache(self, batch, capacity) -> KVCache:
        weight = self.em.weight
        return KVCache(len(self.blocks), batch, self.num_heads, capacity, weight.shape[1] // self.num_heads,
                       weight.device, weight.dtype)

    def position_encodings(self, start, n):
        if start + n > self.positions.shape[0]:                # grow the table: twice what is asked
            self.positions = sinusoidal_table(2 * (start + n), self.positions.shape[1]).to(self.positions.device)
        return self.positions[start:start + n].to(self.em.weight.dtype)

    def forward(self, tokens, cache=None):
        """(batch, seq) token ids -> (batch, seq, voc_size) logits; with a cache, positions follow its length."""
        past = 0 if cache is None else cache.length
        if cache is not None and past + tokens.shape[1] > cache.capacity:
            raise ValueError(f"the cache holds {cache.capacity} positions; {past} + {tokens.shape[1]} asked")
        x = self.em(tokens) + self.position_encodings(past, tokens.shape[1])
        for i, block in enumerate(self.blocks):
            x = block(x, cache, i)
        if cache is not None:
            cache.length = past + tokens.shape[1]
        return self.norm(x) @ self.em.weight.T


# --- three generators with one interface: prefill(prompt, max_new_tokens), step(token), held tensors ---

def held_bytes(tensors) -> int:
    """Bytes of the storages behind the tensors (in nested lists, tuples and dicts), each storage counted once.

    A view keeps its whole storage alive, so this counts what a state really holds, not just its visible size.
    """
    storages = {}

    def visit(item):
        if isinstance(item, torch.Tensor):
            storage = item.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()
        elif isinstance(item, dict):
            for value in item.values():
                visit(value)
        elif isinstance(item, (list, tuple)):
            for value in item:
                visit(value)

    visit(tensors)
    return sum(storages.values())


class SamOutGenerator:
    """SamOut with its state: the prompt once, then one token per step, carrying the running maxima."""

    name = "SamOut (state)"

    def __init__(self, model):
        self.model, self.state = model, None

    def prefill(self, prompt, max_new_tokens):
        logits, self.state = self.model(prompt)
        return logits[:, -1]

    def step(self, token):
        logits, self.state = self.model(token, self.state)
        return logits[:, -1]

    def held(self):
        return self.state


class KVCacheGenerator:
    """The decoder with a key-value cache allocated for prompt + new tokens: each step adds one position."""

    name = "Transformer, KV cache"

    def __init__(self, decoder):
        self.decoder, self.cache = decoder, None

    def prefill(self, prompt, max_new_tokens):
        self.cache = self.decoder.new_cache(prompt.shape[0], prompt.shape[1] + max_new_tokens)
        return self.decoder(prompt, self.cache)[:, -1]

    def step(self, token):
        return self.decoder(token, self.cache)[:, -1]

    def held(self):
        return [self.cache.keys, self.cache.values]


class NoCacheGenerator:
    """The decoder without a cache: every step runs the whole sequence so far and keeps the last logits."""

    name = "Transformer, no cache"

    def __init__(self, decoder):
        self.decoder, self.tokens, self.length = decoder, None, 0

    def prefill(self, prompt, max_new_tokens):
        batch, n = prompt.shape
        self.tokens = prompt.new_zeros(batch, n + max_new_tokens)     # the token ids, prompt and new ones
        self.tokens[:, :n], self.length = prompt, n
        return self.decoder(prompt)[:, -1]

    def step(self, token):
        self.tokens[:, self.length] = token[:, 0]
        self.length += 1
        return self.decoder(self.tokens[:, :self.length])[:, -1]

    def held(self):
        return self.tokens


def decode(generator, token, steps):
    """`steps` greedy steps from `token` (batch, 1); returns the last token chosen, (batch, 1)."""
    for _ in range(steps):
        token = generator.step(token).argmax(dim=-1, keepdim=True)
    return token


def stepwise_logits(generator, prompt, continuation):
    """The logits a generator gives for each next token: after the prompt, then after each token of `continuation`.

    Args:
        prompt: (batch, n) token ids, read at once.
        continuation: (batch, t) token ids, fed one per step (teacher forcing: not the model's choices).

    Returns:
        (batch, t + 1, voc_size): position n - 1 .. n + t - 1's logits, as a full causal pass would give them.
    """
    with torch.no_grad():
        logits = [generator.prefill(prompt, continuation.shape[1])]
        for i in range(continuation.shape[1]):
            logits.append(generator.step(continuation[:, i:i + 1]))
    return torch.stack(logits, dim=1)


# --- measuring ---------------------------------------------------------------------------------------

def build_models(samout_class, voc_size, width, heads, layers, device, seed=0):
    """SamOut (of the given class) and a CausalDecoder of the same width and depth, in eval mode on the device."""
    torch.manual_seed(seed)
    samout = samout_class(voc_size, width, heads, layers).to(device).eval()
    decoder = CausalDecoder(voc_size, width, heads, layers).to(device).eval()
    return samout, decoder


def parameter_count(model) -> int:
    return sum(p.numel() for p in model.parameters())


def timed_run(generator, prompt, new_tokens, device, warmup=2, memory_steps=0, clock=time.perf_counter):
    """Prefill, `warmup` untimed steps, then `new_tokens` timed steps, and optionally memory.

    Returns:
        {"seconds": seconds per new token, "held": bytes of the storages the generator holds after the
        timed steps} and, if memory_steps > 0, "peak": the peak bytes allocated during memory_steps more.
    """
    with torch.no_grad():
        logits = generator.prefill(prompt, warmup + new_tokens + memory_steps)
        last = [decode(generator, logits.argmax(dim=-1, keepdim=True), warmup)]

        def timed():
            last[0] = decode(generator, last[0], new_tokens)

        result = {"seconds": elapsed_seconds(timed, device, clock) / new_tokens, "held": held_bytes(generator.held())}
        if memory_steps:
            result["peak"] = peak_memory(lambda: decode(generator, last[0], memory_steps), device)
    return result


def run(samout, decoder, lengths, new_tokens, no_cache_tokens, repeats, device, memory_steps=2, no_cache_max=None,
        generators=None, seed=0, clock=time.perf_counter):
    """One row per (context length, generator): n, generator, tokens timed, seconds per token, held, peak.

    At each length the generators take turns, run after run, so that a change in the machine's load
    falls on all of them; each keeps its fastest run. The no-cache decoder runs once (it is slow),
    with `no_cache_tokens` timed tokens, and not above `no_cache_max` when that is given. The bytes
    held and the step peak are measured in each generator's last run (after its timing).
    """
    generators = generators or [SamOutGenerator(samout), KVCacheGenerator(decoder), NoCacheGenerator(decoder)]
    voc_size = decoder.em.num_embeddings
    warm = torch.randint(4, voc_size, (1, min(lengths)), generator=torch.Generator().manual_seed(seed)).to(device)
    for generator in generators:                                      # first calls pay one-off costs: not timed
        timed_run(generator, warm, 2, device, warmup=1)
    rows = []
    for n in lengths:
        prompt = torch.randint(4, voc_size, (1, n), generator=torch.Generator().manual_seed(seed + n)).to(device)
        results = {}
        for repeat in range(repeats):
            for generator in generators:
                slow = isinstance(generator, NoCacheGenerator)
                if slow and (repeat > 0 or (no_cache_max is not None and n > no_cache_max)):
                    continue
                last = slow or repeat == repeats - 1
                tokens = no_cache_tokens if slow else new_tokens
                result = timed_run(generator, prompt, tokens, device, warmup=1 if slow else 2,
                                   memory_steps=(min(memory_steps, 1) if slow else memory_steps) if last else 0,
                                   clock=clock)
                if generator in results:                                # keep the fastest run
                    result["seconds"] = min(result["seconds"], results[generator]["seconds"])
                results[generator] = {"n": n, "generator": generator.name, "tokens": tokens, "peak": None, **result}
        for generator in generators:
            rows.append(results.get(generator) or {"n": n, "generator": generator.name,
                                                   "skipped": f"not run above n = {no_cache_max}"})
            generator.prefill(prompt[:, :1], 1)                        # let go of this length's state before the next
    return rows


def size(nbytes) -> str:
    """Bytes in B, KiB or MiB, whichever reads best."""
    for unit, scale in [("MiB", 2**20), ("KiB", 2**10)]:
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}"
    return f"{nbytes} B"


def table(rows) -> str:
    kv = {r["n"]: r for r in rows if r["generator"] == KVCacheGenerator.name and "seconds" in r}
    lines = [f"{'context':>8}  {'generator':22s} {'timed':>5} {'ms/token':>9} {'tokens/s':>9} "
             f"{'state':>10} {'step peak':>10} {'vs KV cache':>12}"]
    for r in rows:
        if "skipped" in r:
            lines.append(f"{r['n']:8d}  {r['generator']:22s} {r['skipped']}")
            continue
        ratio = f"{kv[r['n']]['seconds'] / r['seconds']:11.2f}x" if r["n"] in kv else f"{'-':>12}"
        held, peak = (size(r[key]) if r[key] is not None else "-" for key in ("held", "peak"))
        lines.append(f"{r['n']:8d}  {r['generator']:22s} {r['tokens']:5d} {r['seconds'] * 1e3:9.3f} "
                     f"{1 / r['seconds']:9.1f} {held:>10} {peak:>10} {ratio}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="context lengths (default: 512 to 8192 on a CPU, 512 to 32768 on CUDA, doubling)")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--vocab", type=int, default=256)
    parser.add_argument("--new-tokens", type=int, default=32, help="timed new tokens per run (SamOut, KV cache)")
    parser.add_argument("--no-cache-tokens", type=int, default=4, help="timed new tokens of the no-cache decoder")
    parser.add_argument("--no-cache-max", type=int, default=None, help="longest context for the no-cache decoder")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per length (the fastest is kept); 1 without cache")
    parser.add_argument("--memory-steps", type=int, default=2, help="steps whose peak memory is measured (0: none)")
    parser.add_argument("--cpu-time", action="store_true",
                        help="on a CPU, time with time.process_time (this process's CPU seconds) instead of the wall "
                        "clock: on a shared machine it leaves out the time other processes held the cores; use with --threads 1")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads for torch, the same for every model "
                        "(default: torch's own choice)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads or torch.get_num_threads())
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    lengths = args.lengths or [2 ** p for p in range(9, 16 if cuda else 14)]

    from autograder.references import load_reference
    samout_class = load_reference(CHAPTER).names["SamOut"]
    samout, decoder = build_models(samout_class, args.vocab, args.width, args.heads, args.layers, device)
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    print(f"Generation, batch 1, greedy, float32, width {args.width}, {args.layers} layers, {args.heads} heads, "
          f"vocabulary {args.vocab}, on {device} ({name}, {torch.get_num_threads()} CPU threads, torch {torch.__version__}).")
    print(f"Parameters: SamOut {parameter_count(samout):,d}, Transformer decoder {parameter_count(decoder):,d} "
          f"({parameter_count(decoder) / parameter_count(samout) - 1:+.1%}); weights not counted below.")
    memory = "torch.cuda.max_memory_allocated" if cuda else "the peak of torch.profiler's allocation log"
    clock = "CUDA events" if cuda else ("process CPU time" if args.cpu_time else "wall clock")
    print(f"context: prompt tokens before the timed ones; timed: new tokens timed per run ({clock}, fastest of "
          f"{args.repeats} runs; 1 run without cache);")
    print("state: storage held between steps (SamOut's state, the KV cache allocated for prompt + new tokens, "
          "the no-cache decoder's token ids);")
    print(f"step peak: {memory} during {args.memory_steps} more steps (1 without cache), beyond what was allocated before; "
          "vs KV cache: tokens/s over the KV cache's.")
    started = time.perf_counter()
    rows = run(samout, decoder, lengths, args.new_tokens, args.no_cache_tokens, args.repeats, device,
               args.memory_steps, args.no_cache_max, clock=time.process_time if args.cpu_time else time.perf_counter)
    print(table(rows))
    longest = max(r["n"] for r in rows)
    by = {(r["n"], r["generator"]): r for r in rows if "seconds" in r}
    samout_row, kv_row = by.get((longest, SamOutGenerator.name)), by.get((longest, KVCacheGenerator.name))
    if samout_row and kv_row:
        print(f"at context {longest}: SamOut generates {kv_row['seconds'] / samout_row['seconds']:.2f}x the KV-cache "
              f"decoder's tokens/s")
    print(f"measured in {time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
