"""Benchmark: time and peak memory against sequence length, one MaxState layer against attention.

    python -m autograder.benchmarks.samout_scaling [--device cpu|cuda] [--width W] [--heads H]
                                                  [--lengths N N ...] [--call-limit S] [--budget S] [--threads T]

One layer of each kind, all of the same width, on one sequence of each length: chapter 6's
``MaxState`` (a running maximum, linear in the length), attention that stores its score matrix
(``CausalSelfAttention(naive=True)``) and attention through ``F.scaled_dot_product_attention``.
The layers and the measuring helpers are those of the reference notebook,
solutions/06_samout.ipynb, so the table measures the code the chapter teaches.

Time is the fastest of five calls after a warm-up (two once a call takes over 50 ms). Memory is measured, not computed: on CUDA the
peak of ``torch.cuda.max_memory_allocated`` during the call, beyond what was allocated before;
on a CPU the peak of the running total of ``torch.profiler``'s allocation log
(``profile_memory=True``). The analytic size of one score matrix (heads x n x n numbers) is printed
beside it for comparison. It runs on CUDA when there is a GPU and goes on doubling the length until
attention runs out of memory or a call takes longer than ``--call-limit`` seconds; on a CPU the
defaults keep the whole run to about a minute. It prints a table and asserts nothing.
"""

from __future__ import annotations

import argparse
import time

import torch

from autograder.references import load_reference

CHAPTER = "06_samout"


def out_of_memory(error: BaseException) -> bool:
    if isinstance(error, (MemoryError, getattr(torch, "OutOfMemoryError", MemoryError))):
        return True
    return isinstance(error, RuntimeError) and ("out of memory" in str(error) or "can't allocate" in str(error))


def free(layer, device) -> None:
    layer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.empty_cache()


def run(device: torch.device, width: int, heads: int, lengths: list[int], call_limit: float, budget: float):
    chapter = load_reference(CHAPTER)
    layers = chapter.scaling_layers(width, heads, device)
    active = dict.fromkeys(layers, "")  # layer -> why it stopped ("" while it runs)
    rows, last, started = [], {}, time.perf_counter()
    for n in lengths:
        for name, layer in layers.items():
            if active[name]:
                continue
            if time.perf_counter() - started > budget:
                active[name] = f"time budget of {budget:g} s spent"
                continue
            row = {"n": n, "layer": name}
            repeats = 5 if last.get(name, 0.0) < 0.05 else 2     # more tries where they are cheap: less noise
            try:
                row["forward"], row["forward_memory"] = chapter.measure_layer(layer, n, width, device, False, repeats)
                row["both"], row["memory"] = chapter.measure_layer(layer, n, width, device, True, repeats)
                last[name] = row["both"]
            except Exception as error:  # out of memory is a result; anything else is a bug
                if not out_of_memory(error):
                    raise
                row["failed"] = "out of memory"
                active[name] = f"out of memory at n = {n}"
            finally:
                free(layer, device)
            rows.append(row)
            if "both" in row and row["both"] > call_limit:
                active[name] = f"a call took {row['both']:.1f} s at n = {n} (limit {call_limit:g} s)"
    return rows, active, time.perf_counter() - started


def table(rows, heads, element_size=4) -> str:
    base = {r["n"]: r for r in rows if r["layer"] == "MaxState" and "both" in r}
    lines = [f"{'seq len':>8}  {'layer':31s} {'fwd ms':>9} {'fwd+bwd ms':>11} {'peak MiB':>10} "
             f"{'scores MiB':>11} {'time ratio':>11} {'mem ratio':>10}"]
    for r in rows:
        scores = f"{heads * r['n'] ** 2 * element_size / 2**20:11.1f}" if r["layer"] != "MaxState" else f"{'-':>11}"
        if "failed" in r:
            lines.append(f"{r['n']:8d}  {r['layer']:31s} {r['failed']:>33s} {scores}")
            continue
        ref = base.get(r["n"])
        time_ratio = f"{r['both'] / ref['both']:11.1f}" if ref else f"{'-':>11}"
        memory_ratio = f"{r['memory'] / ref['memory']:10.1f}" if ref and ref["memory"] else f"{'-':>10}"
        lines.append(f"{r['n']:8d}  {r['layer']:31s} {r['forward'] * 1e3:9.2f} {r['both'] * 1e3:11.2f} "
                     f"{r['memory'] / 2**20:10.1f} {scores} {time_ratio} {memory_ratio}")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--width", type=int, default=None, help="width of every layer (default 256 on CUDA, 128 on CPU)")
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--lengths", type=int, nargs="+", default=None,
                        help="sequence lengths (default: doubling from 1024 to 262144 on CUDA, 256 to 8192 on CPU)")
    parser.add_argument("--call-limit", type=float, default=None,
                        help="stop a layer after a forward+backward call takes longer (default 10 s on CUDA, 0.5 s on CPU)")
    parser.add_argument("--budget", type=float, default=None,
                        help="stop measuring after this many seconds (default 600 on CUDA, 45 on CPU)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default: torch's own choice); 1 is steadier on a busy machine")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    width = args.width or (256 if cuda else 128)
    lengths = args.lengths or [2 ** p for p in (range(10, 19) if cuda else range(8, 14))]
    call_limit = args.call_limit or (10.0 if cuda else 0.5)
    budget = args.budget or (600.0 if cuda else 45.0)
    memory = ("torch.cuda.max_memory_allocated during the call" if cuda
              else "peak of torch.profiler's allocation log during the call")
    name = torch.cuda.get_device_name(device) if cuda else "CPU"
    threads = "" if cuda else f", {torch.get_num_threads()} CPU threads"
    print(f"One layer, batch 1, width {width}, {args.heads} heads, float32, on {device} ({name}{threads}, "
          f"torch {torch.__version__}).")
    print(f"peak MiB: measured, the {memory}, forward+backward; scores MiB: the analytic size of one score")
    print("matrix (heads x n x n float32); ratios: forward+backward time and peak memory over MaxState's at that length.")
    rows, stopped, seconds = run(device, width, args.heads, lengths, call_limit, budget)
    print(table(rows, args.heads))
    for layer, why in stopped.items():
        print(f"{layer}: " + (why or f"measured up to n = {lengths[-1]}"))
    print(f"measured in {seconds:.1f} s")


if __name__ == "__main__":
    main()
