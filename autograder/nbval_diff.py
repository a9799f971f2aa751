"""A cell-by-cell comparison of a learner's notebook with the reference run, through nbval.

    python -m autograder diff SUBMISSION.ipynb

Copies the submission to a scratch folder, puts the reference's stored outputs into every
cell the reference marks ``# NBVAL_CHECK_OUTPUT`` (the visible checks and the worked
examples, matched by nbgrader grade_id), and runs ``pytest --nbval-lax`` on the copy, so the
learner sees, cell by cell, where their run prints something other than the reference's.
It executes the learner's notebook in a kernel, as running it in JupyterLab would: it is
a learner's self-check, not grading (the graders run in the sandbox).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from autograder.exercises import CHAPTERS
from autograder.scoring import detect_chapter
from autograder.paths import SOLUTIONS
from autograder.release import LOADER_MODULE, loader_copy

MARKER = "# NBVAL_CHECK_OUTPUT"


def with_reference_outputs(submission: Path, chapter: str) -> tuple[nbformat.NotebookNode, int]:
    """The submission with the reference's outputs in its checked cells, and how many cells got them."""
    notebook = nbformat.read(submission, as_version=4)
    reference = {c.metadata.get("nbgrader", {}).get("grade_id"): c
                 for c in nbformat.read(SOLUTIONS / CHAPTERS[chapter].notebook, as_version=4).cells}
    checked = 0
    for cell in notebook.cells:
        expected = reference.get(cell.metadata.get("nbgrader", {}).get("grade_id"))
        if cell.cell_type != "code" or expected is None or MARKER not in expected.source:
            continue
        if MARKER not in cell.source:
            cell.source = f"{MARKER}\n{cell.source}"
        cell.outputs = expected.outputs
        checked += 1
    return notebook, checked


def diff(submission: Path, timeout: int = 600) -> int:
    """Run nbval on the submission against the reference outputs; return pytest's exit code."""
    chapter = detect_chapter(submission)
    if chapter is None:
        print(f"{submission} is not a notebook of this course", file=sys.stderr)
        return 2
    notebook, checked = with_reference_outputs(submission, chapter)
    print(f"comparing {checked} cells of {submission.name} with the reference run of {chapter}")
    with tempfile.TemporaryDirectory(prefix="diff-") as scratch:
        copy = Path(scratch) / CHAPTERS[chapter].notebook
        nbformat.write(notebook, copy)
        (Path(scratch) / LOADER_MODULE).write_text(loader_copy(), encoding="utf-8")
        for sibling in Path(submission).resolve().parent.glob("*.ipynb"):  # earlier chapters it imports
            if sibling.name != copy.name:
                shutil.copyfile(sibling, Path(scratch) / sibling.name)
        command = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
                   "--nbval-cell-timeout", str(timeout), "-q", copy.name]
        return subprocess.run(command, cwd=scratch).returncode
