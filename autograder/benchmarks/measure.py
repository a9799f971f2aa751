"""Time and peak memory of one call, on a GPU or a CPU: the plumbing behind chapter 6's scaling cells.

    from autograder.benchmarks.measure import time_and_peak_memory
    seconds, peak_bytes = time_and_peak_memory(fn, device, repeats=3)

Chapter 6 (``06_samout.ipynb``) compares the time and memory of a running maximum and of attention
against the sequence length; its ``measure_layer`` calls ``time_and_peak_memory`` and nothing else
from here, and ``python -m autograder.benchmarks.samout_scaling`` uses the chapter's
``measure_layer``. ``python -m autograder.benchmarks.generation`` (and the chapter's generation
cell) times decoding steps with ``elapsed_seconds`` and measures their memory with ``peak_memory``.
The helpers live here, not in the notebook, because they are bookkeeping (synchronising a GPU,
replaying a profiler's allocation log, silencing the profiler's C++ logging), not what the
chapter teaches.

Memory is measured, never computed from a formula:

- on CUDA, the peak of ``torch.cuda.max_memory_allocated`` during the call, beyond what was
  allocated before it;
- on a CPU, which has no such counter, ``torch.profiler`` records every allocation and release
  (``profile_memory=True``); replayed in time order, the peak of their running total is the figure.
  The profiler's C++ side writes a few lines per run straight to file descriptor 2, below Python's
  ``sys.stderr``; ``quiet_os_stderr`` points that descriptor at ``os.devnull`` while it runs, so a
  notebook cell (or an nbgrader cell, which scores any stderr output zero) stays clean.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Callable, Iterator

import torch


@contextlib.contextmanager
def quiet_os_stderr() -> Iterator[None]:
    """Send the process's error stream (file descriptor 2) to os.devnull inside the block."""
    sys.stderr.flush()
    saved, null = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory(fn: Callable[[], object], device: torch.device) -> int:
    """Peak bytes allocated while fn() runs, beyond what was allocated before."""
    if device.type == "cuda":
        _synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        _synchronize(device)
        return torch.cuda.max_memory_allocated(device) - before
    activities = [torch.profiler.ProfilerActivity.CPU]
    with quiet_os_stderr(), torch.profiler.profile(activities=activities, profile_memory=True) as profile:
        fn()
    current = peak = 0
    for event in sorted(profile.events(), key=lambda e: e.time_range.start):
        # an operator's own allocations (self_cpu_memory_usage) and the releases, logged as "[memory]"
        current += event.cpu_memory_usage if event.name == "[memory]" else event.self_cpu_memory_usage
        peak = max(peak, current)
    return peak


def seconds_per_call(fn: Callable[[], object], device: torch.device, repeats: int = 3) -> float:
    """The fastest of `repeats` timed calls of fn(), after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        _synchronize(device)
        started = time.perf_counter()
        fn()
        _synchronize(device)
        best = min(best, time.perf_counter() - started)
    return best


def elapsed_seconds(fn: Callable[[], object], device: torch.device,
                    clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds taken by one call of fn(), from the first of its work to the last.

    On CUDA the GPU is first drained (so earlier work is not counted), then two CUDA events are
    recorded on the current stream around the call: their interval covers fn's kernels and any
    gaps while Python launches them. On a CPU it is the difference of `clock()` around the call:
    wall time by default; ``time.process_time`` gives the CPU time of this process instead (on a
    shared machine it leaves out the time other processes held the cores; with one torch thread
    it is the time the work itself took).
    """
    if device.type == "cuda":
        _synchronize(device)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000.0     # elapsed_time is in milliseconds
    started = clock()
    fn()
    return clock() - started


def time_and_peak_memory(fn: Callable[[], object], device: torch.device, repeats: int = 3) -> tuple[float, int]:
    """(seconds, peak bytes) of one call of fn() on the device.

    Args:
        fn: a function of no arguments, the work to measure (it runs repeats + 2 times).
        device: the torch.device fn works on; on CUDA the timings wait for the GPU to finish.
        repeats: timed calls after one warm-up; the fastest one is kept.

    Returns:
        seconds: the fastest timed call, in seconds.
        peak_bytes: the peak memory allocated during one more call, beyond what was allocated before.
    """
    return seconds_per_call(fn, device, repeats), peak_memory(fn, device)
