"""Run one submission's graders in a child process under time, memory and file-size limits.

The parent copies the submission into a scratch directory, starts ``python -m
autograder.sandbox`` there in a new session, and reads back plain outcome records (JSON
lines) from a file in a directory of its own. Whatever the child does (hang, exit, crash,
allocate without end) the parent gets a GradeResult that says what happened; points are
computed in the parent by ``grading.score``.

Judge and contestant: before any learner code runs, the child loads the reference, imports
the graders, opens its outcome file, snapshots the libraries the graders use (undoing any
patch after every learner call, see ``guard``) and, when it runs as root and Python is
readable by others, drops to the unprivileged user ``nobody``, so the learner cannot edit
the instructor's files; otherwise the parent checks that no grader or reference file changed
(``GradeResult.warnings``; ``grade-all`` stops at the first such warning). Each record
carries an HMAC under a key the parent sends through a pipe; the parent drops records
without a valid one, so a fake results file scores nothing. Messages that quote the graders'
or the reference's source are redacted, and the parent refuses to go on if the graders'
files changed while a submission ran.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from autograder.exercises import CHAPTERS, exercise_defining, exercises_of
from autograder.grading import PACKAGE, SOLUTIONS, detect_chapter, redact, score
from autograder.results import GradeResult

DEFAULT_TIMEOUT = 120.0  # seconds for the whole submission
DEFAULT_TEST_TIMEOUT = 20.0  # seconds for one grader test
DEFAULT_LOAD_TIMEOUT = 60.0  # seconds for loading the notebook's definitions
DEFAULT_MEMORY = 4 << 30  # bytes of address space
MAX_OUTPUT = 64 << 20  # bytes any file the child writes may reach
MAX_PROCESSES = 256  # per user; root ignores it, which is why the child drops to nobody
NOBODY = 65534


GRADERS_CHANGED = ("grader or reference files changed while this submission was graded: check them with "
                   "`git status autograder solutions` before trusting any later result")

def grade_submission(path: str | Path, chapter: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                     test_timeout: float = DEFAULT_TEST_TIMEOUT, memory: int = DEFAULT_MEMORY,
                     load_timeout: float = DEFAULT_LOAD_TIMEOUT) -> GradeResult:
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
        # The earlier chapters it imports are graded on their own: give it their references.
        for earlier in earlier_chapters(chapter):
            shutil.copyfile(SOLUTIONS / CHAPTERS[earlier].notebook, work / CHAPTERS[earlier].notebook)
        outcomes_file = results / "outcomes.jsonl"
        stderr_file = results / "stderr.txt"
        privileged = can_drop_privileges()
        if privileged:  # the child drops to nobody: let it work in its own directory
            scratch.chmod(0o711)  # nobody may pass through to work/, but not list or read results/
            for owned in (work, submission):
                os.chown(owned, NOBODY, NOBODY)
        key = secrets.token_bytes(32)
        command = [sys.executable, "-m", "autograder.sandbox", chapter, str(submission), str(outcomes_file),
                   str(test_timeout), str(load_timeout)]
        env = _child_env(work)
        env["AUTOGRADER_DROP_TO_NOBODY"] = "1" if privileged else "0"
        # Without root the child keeps the instructor's rights: detect what it cannot be denied.
        # (Course developers who edit graders while grading set AUTOGRADER_TRUST_GRADER_FILES=1.)
        check_files = not privileged and os.environ.get("AUTOGRADER_TRUST_GRADER_FILES") != "1"
        graders_before = _graders_state() if check_files else None
        with open(stderr_file, "wb") as stderr:
            child = subprocess.Popen(command, cwd=work, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                     stderr=stderr, start_new_session=True, env=env,
                                     preexec_fn=lambda: _limit(memory))
            try:
                child.stdin.write(key.hex().encode() + b"\n")
                child.stdin.close()
            except OSError:
                pass  # the child died before reading its key; its status says why
            try:
                child.wait(timeout=timeout)
                timed_out = False
            except subprocess.TimeoutExpired:
                timed_out = True
            finally:
                _kill_group(child)
        changed = graders_before is not None and _graders_state() != graders_before
        records, forged = _read_records(outcomes_file, key)
        status, detail = _status(records, timed_out, child.returncode, timeout, _tail(stderr_file))
        if forged:
            detail = (detail + "; " if detail else "") + f"{forged} unauthenticated result lines ignored"
        outcomes = [redact(r, chapter) for r in records if r.get("type") == "outcome"]
        problems = next((r.get("problems", []) for r in records if r.get("type") == "loaded"), [])
        result = score(path.name, chapter, outcomes, status, detail, problems)
        if changed:
            result.warnings.append(GRADERS_CHANGED)
    result.seconds = round(time.monotonic() - started, 3)
    return result


def earlier_chapters(chapter: str) -> set[str]:
    """The other chapters whose graded names this chapter's exercises use."""
    return {exercise_defining(n).chapter for e in exercises_of(chapter) for n in e.uses} - {chapter}


def can_drop_privileges() -> bool:
    """Root, and Python, the venv and the project readable by nobody (a pyenv under /root is not)."""
    if os.geteuid() != 0:
        return False
    import sysconfig
    needed = {Path(sys.base_prefix), Path(sys.prefix), Path(sysconfig.get_paths()["stdlib"]),
              Path(sysconfig.get_paths()["purelib"]), Path(__file__).resolve().parent.parent}
    for path in needed:
        for folder in [path, *path.parents]:
            if folder.exists() and not folder.stat().st_mode & 0o001:  # others may not traverse it
                return False
    return True


def _child_env(work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPY"))}
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")  # many children share the cores
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["MPLBACKEND"] = "Agg"
    for variable in ("HOME", "MPLCONFIGDIR", "TMPDIR", "XDG_CACHE_HOME"):
        env[variable] = str(work)  # the only place the child can write once it is nobody
    return env


def _limit(memory: int) -> None:
    import resource
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_OUTPUT, MAX_OUTPUT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))


def _graders_state() -> list[tuple[str, int, int]]:
    """Size and modification time of every grader, grading and reference file: cheap to take."""
    files = sorted(PACKAGE.rglob("*.py")) + sorted(SOLUTIONS.glob("*.ipynb"))
    return [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files if p.exists()]


def sign(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def _kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGKILL)  # the child and anything it forked
    except (ProcessLookupError, PermissionError):
        pass
    child.wait()


def _read_records(path: Path, key: bytes) -> tuple[list[dict], int]:
    """The authenticated records of the outcome file, and how many lines were not."""
    records, forged = [], 0
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return records, forged
    for line in lines:
        payload, _, signature = line.rpartition("\t")
        if not hmac.compare_digest(sign(key, payload), signature):
            forged += 1
            continue
        record = json.loads(payload)
        if isinstance(record, dict):
            records.append(record)
    return records, forged


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

def _child_main(chapter: str, notebook: str, outcomes_path: str, test_timeout: float, load_timeout: float) -> None:
    import importlib

    from autograder import loader, probes
    from autograder.grading import explain_missing, load_reference, run_graders
    from autograder.guard import NamespaceGuard
    from autograder.pytest_plugin import _time_limit

    key = bytes.fromhex(sys.stdin.readline().strip())
    sys.stdin.close()
    out = open(outcomes_path, "a", encoding="utf-8")

    def emit(record, _key=key):
        payload = json.dumps(record, default=str)
        out.write(f"{payload}\t{sign(_key, payload)}\n")
        out.flush()

    # Everything the judge needs is loaded before any learner code runs.
    for needed in {chapter} | earlier_chapters(chapter):
        load_reference(needed)
    importlib.import_module(CHAPTERS[chapter].grader_module)
    sys.modules["notebook_loader"] = loader  # what course/ notebooks import
    guard = NamespaceGuard.install()
    del key
    if os.environ.get("AUTOGRADER_DROP_TO_NOBODY") == "1":
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    try:
        with _time_limit(load_timeout):
            loaded = loader.load_notebook(notebook, catch_interrupts=True, after_statement=guard.restore)
    except probes.GraderTimeout:
        emit({"type": "load_timeout"})
        return
    guard.restore()
    emit({"type": "loaded", "problems": [str(p) for p in loaded.problems], "names": sorted(loaded.defined_in)})
    run_graders(chapter, loaded.names, lambda name: explain_missing(loaded.problems, name),
                test_timeout=test_timeout, on_outcome=lambda o: emit({"type": "outcome", **o}))
    emit({"type": "done"})
    out.close()
    os._exit(0)  # skip interpreter teardown: learner objects may misbehave in finalizers


if __name__ == "__main__":
    _child_main(sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), float(sys.argv[5]))
