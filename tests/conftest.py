"""Shared helpers for the project's own tests."""

import fcntl
import json
import os
from pathlib import Path

import nbformat
import pytest

PROJECT = Path(__file__).resolve().parent.parent
SOLUTIONS = PROJECT / "solutions"
COURSE = PROJECT / "course"


# Modules whose tests share one expensive module fixture: under `--dist loadgroup` (make test) each
# runs whole on one pytest-xdist worker, as does each notebook that nbval runs (its cells share one
# kernel, in order), while every other test goes wherever a worker is free. Named here rather than
# with xdist_group marks, which pytest-xdist 3.8 silently ignores under pytest 9.2
# (pytest-dev/pytest-xdist#1386): the other worker then waited on the fixture's lock.
ONE_WORKER_MODULES = ("test_book.py", "test_generation_benchmark.py", "test_hostile_submissions.py",
                      "test_release_is_fresh.py", "test_wire_types.py")


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class ModulesOnOneWorker(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            if module.endswith(".ipynb") or module.rpartition("/")[2] in ONE_WORKER_MODULES:
                return module
            return super()._split_scope(nodeid)
    return ModulesOnOneWorker(config, log)


def cores_per_worker() -> int:
    """How many submissions a test may grade at once: the cores, shared among pytest-xdist's workers."""
    return max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def once_per_run(tmp_path_factory, name: str, compute):
    """(folder, ``compute(folder)``): computed by the first pytest-xdist worker that asks, read back
    by the others. pytest-xdist may hand some tests of a module to another worker, which would
    otherwise run the module's expensive fixture a second time. ``compute`` returns JSON data."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # this run's, never a past run's
    folder, saved = shared / name, shared / f"{name}.json"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not saved.exists():
            folder.mkdir(exist_ok=True)
            saved.write_text(json.dumps(compute(folder)), encoding="utf-8")
    return folder, json.loads(saved.read_text(encoding="utf-8"))


def code_cell(source: str, grade_id: str | None = None, **nbgrader) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    if grade_id:
        cell.metadata["nbgrader"] = {"grade_id": grade_id, "schema_version": 3, **nbgrader}
    return cell


def write_notebook(path: Path, cells, chapter: str | None = None) -> Path:
    notebook = nbformat.v4.new_notebook(cells=list(cells))
    if chapter:
        notebook.metadata["course"] = {"chapter": chapter}
    nbformat.write(notebook, str(path))
    return path


def edited_solution(tmp_path: Path, chapter: str, replacements, name: str | None = None) -> Path:
    """A copy of a reference notebook with each (old, new) replaced exactly once in its code cells."""
    notebook = json.loads((SOLUTIONS / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    for old, new in replacements:
        hits = [c for c in notebook["cells"] if c["cell_type"] == "code" and old in "".join(c["source"])]
        assert len(hits) == 1, f"{old!r} occurs in {len(hits)} code cells of {chapter}, expected exactly one"
        source = "".join(hits[0]["source"])
        assert source.count(old) == 1, f"{old!r} occurs more than once in its cell"
        hits[0]["source"] = source.replace(old, new)
    path = tmp_path / (name or f"{chapter}.ipynb")
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return path


@pytest.fixture
def make_notebook(tmp_path):
    def make(*cells, name="notebook.ipynb", chapter=None):
        return write_notebook(tmp_path / name, cells, chapter)
    return make


def contestant_process(notebook: Path, stderr: Path, keep=()):
    """A contestant process loading ``notebook``: (the contestant, what it loaded, the judge's view of its names)."""
    from autograder.sandbox.judge import Contestant, RemoteNamespace
    contestant = Contestant(notebook, 60.0, 4 << 30, stderr, {}, keep=tuple(keep))
    contestant.start()
    return contestant, contestant.wait_loaded(), RemoteNamespace(contestant)


@pytest.fixture
def start_contestant(tmp_path):
    """Starts contestants on given notebooks (what they loaded, their names); kills them after the test."""
    started = []

    def start(notebook: Path, keep=()):
        contestant, loaded, names = contestant_process(notebook, tmp_path / "contestant-stderr.txt", keep)
        started.append(contestant)
        return loaded, names
    yield start
    for contestant in started:
        contestant.kill()
