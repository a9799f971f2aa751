"""Run one submission's graders in a child process under time, memory and file-size limits.

The parent copies the submission into a scratch directory, starts ``python -m
autograder.sandbox`` there in a new session, and reads back plain outcome records (JSON
lines) from a file in a directory of its own. Whatever the child does (hang, exit, crash,
allocate without end) the parent gets a GradeResult that says what happened; points are
computed in the parent by ``grading.score``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.grading import detect_chapter, score
from autograder.results import GradeResult

DEFAULT_TIMEOUT = 120.0  # seconds for the whole submission
DEFAULT_TEST_TIMEOUT = 20.0  # seconds for one grader test
DEFAULT_MEMORY = 4 << 30  # bytes of address space
MAX_OUTPUT = 64 << 20  # bytes any file the child writes may reach


def grade_submission(path: str | Path, chapter: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                     test_timeout: float = DEFAULT_TEST_TIMEOUT, memory: int = DEFAULT_MEMORY) -> GradeResult:
    """Grade one notebook in a sandboxed child process."""
    path = Path(path)
    started = time.monotonic()
    chapter = chapter or detect_chapter(path)
    if chapter is None:
        return GradeResult(path.name, None, "invalid", "not a notebook of this course (no chapter recognised)")
    with tempfile.TemporaryDirectory(prefix="grade-") as scratch:
        scratch = Path(scratch)
        work, results = scratch / "work", scratch / "results"
        work.mkdir()
        results.mkdir()
        submission = work / path.name
        try:
            shutil.copyfile(path, submission)
        except OSError as error:
            return GradeResult(path.name, chapter, "invalid", f"cannot read the submission: {error}")
        outcomes_file = results / "outcomes.jsonl"
        stderr_file = results / "stderr.txt"
        command = [sys.executable, "-m", "autograder.sandbox", chapter, str(submission), str(outcomes_file),
                   str(test_timeout)]
        with open(stderr_file, "wb") as stderr:
            child = subprocess.Popen(command, cwd=work, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=stderr, start_new_session=True, env=_child_env(),
                                     preexec_fn=lambda: _limit(memory))
            try:
                code = child.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(child)
        records = _read_records(outcomes_file)
        status, detail = _status(records, timed_out, child.returncode, timeout, _tail(stderr_file))
        outcomes = [r for r in records if r.get("type") == "outcome"]
        problems = next((r.get("problems", []) for r in records if r.get("type") == "loaded"), [])
        result = score(path.name, chapter, outcomes, status, detail, problems)
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _child_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPY"))}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")  # many children share the cores
    env["MPLBACKEND"] = "Agg"
    return env


def _limit(memory: int) -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_OUTPUT, MAX_OUTPUT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)  # the child and anything it forked
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()


def _read_records(path: Path) -> list[dict]:
    records = []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return records
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - size))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _status(records, timed_out, returncode, timeout, stderr) -> tuple[str, str]:
    if any(r.get("type") == "done" for r in records):
        return "ok", ""
    if timed_out:
        return "timeout", f"grading stopped after {timeout:g} s (an endless loop or a very slow cell?)"
    if any(r.get("type") == "load_timeout" for r in records):
        return "timeout", "loading the notebook's definitions took too long (an endless loop at the top level?)"
    last_line = next((l for l in reversed(stderr.strip().splitlines()) if l.strip()), "")
    if "MemoryError" in stderr or "can't allocate" in stderr or returncode == -signal.SIGKILL:
        return "out_of_memory", f"the submission ran out of memory ({last_line[:200]})"
    return "crashed", f"the grading process exited with code {returncode} ({last_line[:300]})"


# ---- the child ------------------------------------------------------------------------------

LOAD_TIMEOUT = 60.0


def _child_main(chapter: str, notebook: str, outcomes_path: str, test_timeout: float) -> None:
    from autograder import loader
    from autograder.grading import explain_missing, load_reference, run_graders
    from autograder.pytest_plugin import GraderTimeout, _time_limit

    out = open(outcomes_path, "a", encoding="utf-8")

    def emit(record):
        out.write(json.dumps(record, default=str) + "\n")
        out.flush()

    load_reference(chapter)  # before any learner code runs
    sys.modules["notebook_loader"] = loader  # what course/ notebooks import
    try:
        with _time_limit(LOAD_TIMEOUT):
            loaded = loader.load_notebook(notebook)
    except GraderTimeout:
        emit({"type": "load_timeout"})
        return
    emit({"type": "loaded", "problems": [str(p) for p in loaded.problems], "names": sorted(loaded.defined_in)})
    run_graders(chapter, loaded.names, lambda name: explain_missing(loaded.problems, name),
                test_timeout=test_timeout, on_outcome=lambda o: emit({"type": "outcome", **o}))
    emit({"type": "done"})
    out.close()
    os._exit(0)  # skip interpreter teardown: learner objects may misbehave in finalizers


if __name__ == "__main__":
    _child_main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]))
