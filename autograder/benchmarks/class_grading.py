"""Benchmark: grading a synthetic class with grade-all (1 and 2 jobs) and with nbgrader autograde.

    python -m autograder.benchmarks.class_grading [--students 100] [--nbgrader-students 10]

The class mixes, for every registered chapter, the reference, the untouched release, every
mutant of tests/mutants and a few hostile notebooks, cycled over the students. Prints seconds
per submission, submissions per minute, peak memory of one grading process, and nbgrader
autograde on the first students for comparison. Asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import pkgutil
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.classroom import grade_class
from autograder.exercises import CHAPTERS
from autograder.paths import PROJECT, SOLUTIONS
from autograder.release import generate_assignment, make_nbgrader_course, tool_env

HOSTILE_CELLS = [
    "class Spin:\n    while True:\n        pass\n",
    "import os\nclass Leave:\n    os._exit(1)\n",
    "class Hog:\n    hog = [bytearray(1 << 26) for _ in range(1000)]\n",
]


def variants() -> list[tuple[str, str]]:
    """(chapter, notebook text) for every kind of submission in the class, the chapters taking
    turns, so that a class smaller than the catalogue still has every chapter."""
    sys.path.insert(0, str(PROJECT / "tests"))
    import mutants
    catalogue = [m for info in pkgutil.iter_modules(mutants.__path__)
                 for m in importlib.import_module(f"mutants.{info.name}").MUTANTS]
    by_chapter = []
    for chapter in CHAPTERS:
        kinds = []
        by_chapter.append(kinds)
        reference = (SOLUTIONS / f"{chapter}.ipynb").read_text(encoding="utf-8")
        kinds.append((chapter, reference))
        kinds.append((chapter, (PROJECT / "course" / f"{chapter}.ipynb").read_text(encoding="utf-8")))
        for mutant in (m for m in catalogue if m.chapter == chapter):
            text = reference
            for old, new in mutant.replacements:
                text = text.replace(json.dumps(old)[1:-1], json.dumps(new)[1:-1], 1)
            kinds.append((chapter, text))
        for source in HOSTILE_CELLS:
            notebook = json.loads(reference)
            notebook["cells"].insert(1, {"cell_type": "code", "metadata": {}, "source": source,
                                         "outputs": [], "execution_count": None})
            kinds.append((chapter, json.dumps(notebook)))
    turns = itertools.zip_longest(*by_chapter)
    return [kind for turn in turns for kind in turn if kind is not None]


def build_class(root: Path, students: int) -> list[tuple[str, str]]:
    kinds = variants()
    placed = []
    for i in range(students):
        chapter, text = kinds[i % len(kinds)]
        folder = root / f"student{i:03d}" / chapter
        folder.mkdir(parents=True)
        (folder / f"{chapter}.ipynb").write_text(text, encoding="utf-8")
        placed.append((f"student{i:03d}", chapter))
    return placed


def time_grade_all(root: Path, jobs: int) -> float:
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        grade_class(root, Path(out), jobs=jobs, progress=True, timeout=60, test_timeout=10, load_timeout=10)
        return time.perf_counter() - started


def time_nbgrader(root: Path, placed: list[tuple[str, str]], count: int) -> float:
    with tempfile.TemporaryDirectory() as scratch:
        course = make_nbgrader_course(Path(scratch) / "course", link=False)
        for chapter in {c for _, c in placed[:count]}:
            generate_assignment(course, chapter)
        for student, chapter in placed[:count]:
            shutil.copytree(root / student, course / "submitted" / student)
        started = time.perf_counter()
        for chapter in sorted({c for _, c in placed[:count]}):
            subprocess.run([sys.executable, "-m", "nbgrader", "autograde", chapter, "--log-level=ERROR"],
                           cwd=course, env=tool_env(), capture_output=True)
        return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--students", type=int, default=100)
    parser.add_argument("--nbgrader-students", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch) / "submitted"
        placed = build_class(root, args.students)
        print(f"{args.students} submissions over {len(CHAPTERS)} chapters "
              f"({len(variants())} kinds: references, releases, mutants, hostile)")
        for jobs in (1, 2):
            seconds = time_grade_all(root, jobs)
            print(f"  grade-all --jobs {jobs}: {seconds:7.1f} s, {seconds / args.students:5.2f} s per submission, "
                  f"{60 * args.students / seconds:6.1f} submissions per minute")
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"  peak memory of one grading process: {peak:.0f} MiB")
        count = min(args.nbgrader_students, args.students)
        seconds = time_nbgrader(root, placed, count)
        print(f"  nbgrader autograde, first {count} submissions: {seconds:7.1f} s, "
              f"{seconds / count:5.2f} s per submission, {60 * count / seconds:6.1f} submissions per minute")


if __name__ == "__main__":
    main()
