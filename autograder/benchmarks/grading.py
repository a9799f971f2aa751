"""Benchmark: seconds to grade one chapter-1 submission with the CLI (a new process, and one more
in a process that has graded one: what ``grade-all`` pays per submission) and with nbgrader autograde.

    python -m autograder.benchmarks.grading [--repeat N]

Prints figures and the targets they are measured against; it asserts nothing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.paths import SOLUTIONS
from autograder.release import make_nbgrader_course, tool_env

CHAPTER = "01_self_attention"
TARGET_SECONDS = 2.5
TARGET_SPEED_UP = 3.0


def time_cli(notebook: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "autograder", "grade", str(notebook)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    return time.perf_counter() - started


def time_in_process(notebook: Path, repeat: int) -> list[float]:
    """Seconds per submission once this process's fork server of judges has started."""
    from autograder.sandbox import grade_submission
    seconds = []
    for _ in range(repeat + 1):  # the first starts the fork server
        started = time.perf_counter()
        result = grade_submission(notebook)
        seconds.append(time.perf_counter() - started)
        if result.status != "ok":
            raise RuntimeError(f"{result.status}: {result.detail}")
    return seconds[1:]


def time_nbgrader(notebook: Path, root: Path, student: str) -> float:
    folder = root / "submitted" / student / CHAPTER
    folder.mkdir(parents=True)
    shutil.copyfile(notebook, folder / notebook.name)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", CHAPTER, "--student", student,
                           "--log-level=WARN"], cwd=root, capture_output=True, text=True, env=tool_env())
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    notebook = SOLUTIONS / f"{CHAPTER}.ipynb"
    cli = [time_cli(notebook) for _ in range(args.repeat)]
    warm = time_in_process(notebook, args.repeat)
    with tempfile.TemporaryDirectory() as scratch:
        root = make_nbgrader_course(Path(scratch) / "course", link=False)
        subprocess.run([sys.executable, "-m", "nbgrader", "generate_assignment", CHAPTER, "--log-level=WARN"],
                       cwd=root, check=True, capture_output=True, env=tool_env())
        nbgrader = [time_nbgrader(notebook, root, f"student{i}") for i in range(args.repeat)]
    cli_s, warm_s, nbgrader_s = statistics.median(cli), statistics.median(warm), statistics.median(nbgrader)
    print(f"one {CHAPTER} submission, median of {args.repeat}:")
    print(f"  CLI (python -m autograder grade)   {cli_s:6.2f} s   target <= {TARGET_SECONDS:g} s")
    print(f"  one more, in the same process      {warm_s:6.2f} s   target <= {TARGET_SECONDS:g} s  (grade-all, per submission)")
    print(f"  nbgrader autograde                 {nbgrader_s:6.2f} s")
    print(f"  speed-up                           {nbgrader_s / cli_s:6.2f} x   target >= {TARGET_SPEED_UP:g} x")


if __name__ == "__main__":
    main()
