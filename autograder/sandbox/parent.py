"""Grade one submission with the judge and the contestant in processes of their own.

The parent (this module, in the instructor's process) copies the submission into a scratch
directory and starts the judge (``autograder.sandbox.judge``) in a new session under time, memory
and file-size limits, as a fork of this thread's zygote of judges (``zygote.ForkServer``), which
has imported torch once for all the submissions the thread grades. The judge loads the
reference and the graders and starts the contestant (``autograder.sandbox.contestant``), the
only process that runs the submission's code, in the scratch directory's ``work/``, with no
capabilities (as ``nobody`` when Python is readable by it). The parent reads back the judge's
records (``protocol``), each signed with an HMAC under a key it sends the judge through a pipe:
lines without a valid signature (a submission writing a fake results file) are dropped and
counted. Points are computed here, by ``scoring.score``, from the plan of the graders' source.

Whatever the submission does (hang, exit, crash, allocate without end, fork) the parent gets
a GradeResult that says what happened. Messages that quote the graders' or the reference's
source are redacted. A contestant running as the instructor's user can still write the
instructor's files: the parent notices when a grader or reference file changed while a
submission ran (``GradeResult.warnings``; ``grade-all`` stops at the first such warning).
"""

from __future__ import annotations

import ast
import atexit
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from autograder.exercises import CHAPTERS, exercise_defining, exercises_of
from autograder.paths import PACKAGE, PROJECT, SOLUTIONS
from autograder.results import GradeResult
from autograder.sandbox import protocol
from autograder.sandbox.limits import NOBODY, limit_resources
from autograder.sandbox.protocol import DONE, LOAD_TIMEOUT, LOADED, OUTCOME, JudgeTask, of_type
from autograder.sandbox.zygote import ForkServer
from autograder.scoring import detect_chapter, redact, score

DEFAULT_TIMEOUT = 120.0  # seconds for the whole submission
DEFAULT_TEST_TIMEOUT = 20.0  # seconds for one grader test
DEFAULT_LOAD_TIMEOUT = 60.0  # seconds for loading the notebook's definitions
DEFAULT_MEMORY = 4 << 30  # bytes of address space


_THREAD = threading.local()  # each grading thread's zygote of judges (a ForkServer)

GRADERS_CHANGED = ("grader or reference files changed while this submission was graded: check them with "
                   "`git status autograder solutions` before trusting any later result")


def grade_submission(path: str | Path, chapter: str | None = None, timeout: float = DEFAULT_TIMEOUT,
                     test_timeout: float = DEFAULT_TEST_TIMEOUT, memory: int = DEFAULT_MEMORY,
                     load_timeout: float = DEFAULT_LOAD_TIMEOUT) -> GradeResult:
    """Grade one notebook: the judge and the contestant in processes of their own."""
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
        earlier = earlier_chapters(chapter)
        for other in earlier:
            shutil.copyfile(SOLUTIONS / CHAPTERS[other].notebook, work / CHAPTERS[other].notebook)
        privileged = can_drop_privileges()
        if privileged:  # the contestant drops to nobody: let it work in its own directory
            scratch.chmod(0o711)  # nobody may pass through to work/, but not list or read results/
            for owned in (work, submission):
                os.chown(owned, NOBODY, NOBODY)
        task = JudgeTask(chapter, tuple(sorted({chapter} | earlier)), str(submission), str(results / "outcomes.jsonl"),
                         test_timeout, load_timeout, memory, privileged)
        result = _judge(path.name, task, timeout, _process_env(work))
    result.seconds = round(time.monotonic() - started, 3)
    return result


def _judge(name: str, task: JudgeTask, timeout: float, env: dict) -> GradeResult:
    """Run the judge on ``task``; score its authenticated records."""
    outcomes_file, stderr_file = Path(task.outcomes), Path(task.outcomes).parent / "stderr.txt"
    key = protocol.new_key()
    # Without root the contestant keeps the instructor's user: detect what it cannot be denied.
    # (Course developers who edit graders while grading set AUTOGRADER_TRUST_GRADER_FILES=1.)
    check_files = not task.drop_to_nobody and os.environ.get("AUTOGRADER_TRUST_GRADER_FILES") != "1"
    graders_before = _graders_state() if check_files else None
    with open(stderr_file, "wb") as stderr:
        judge = _start_judge(task, env, key, stderr.fileno())
        try:
            judge.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            timed_out = True
        finally:
            _stop(judge, outcomes_file, key)
    changed = graders_before is not None and _graders_state() != graders_before
    records, forged = protocol.read_records(outcomes_file, key)
    status, detail = _status(records, timed_out, judge.returncode, timeout, _tail(stderr_file))
    if forged:
        detail = (detail + "; " if detail else "") + f"{forged} unauthenticated result lines ignored"
    outcomes = [redact(r, task.chapter) for r in of_type(records, OUTCOME)]
    problems = next((r.get("problems", []) for r in of_type(records, LOADED)), [])
    result = score(name, task.chapter, outcomes, status, detail, problems)
    if changed:
        result.warnings.append(GRADERS_CHANGED)
    return result


def _start_judge(task: JudgeTask, env: dict, key: bytes, stderr: int):
    """The judge, forked by this thread's zygote (or started as a new Python when it cannot be),
    its key sent on its stdin."""
    cwd = str(Path(task.outcomes).parent)
    stdin, key_writer = os.pipe()
    try:
        request = {"argv": task.argv(), "env": env, "cwd": cwd, "memory": task.memory,
                   "imports": sorted(set().union(*map(_notebook_imports, task.references)))}
        judge = _zygote().start(request, stdin, stderr)
        if judge is None:
            judge = subprocess.Popen([sys.executable, "-P", "-m", "autograder.sandbox.judge", *task.argv()], cwd=cwd,
                                     stdin=stdin, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True,
                                     env=env, preexec_fn=lambda: limit_resources(task.memory))
    finally:
        os.close(stdin)
    with open(key_writer, "wb", buffering=0) as writer:  # unbuffered: a closed pipe fails in the try
        try:
            protocol.send_key(writer, key)
        except OSError:
            pass  # the judge died before reading its key; its status says why
    return judge


def _zygote() -> ForkServer:
    """This thread's zygote of judges, started on first use and again when it broke."""
    zygote = getattr(_THREAD, "zygote", None)
    if zygote is None or not zygote.usable():
        home = _zygote_home()
        zygote = _THREAD.zygote = ForkServer("autograder.sandbox.judge", _process_env(home), str(home))
    return zygote


@functools.cache
def _notebook_imports(chapter: str) -> frozenset[str]:
    """The modules a chapter's reference notebook imports at the top level of its cells: the
    zygote imports them (their names only: it never reads a notebook) before it forks a judge."""
    modules = set()
    notebook = json.loads((SOLUTIONS / CHAPTERS[chapter].notebook).read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell["cell_type"] != "code" or cell["metadata"].get("nbgrader", {}).get("grade"):
            continue  # prose, or hidden tests
        try:
            statements = ast.parse("".join(cell["source"])).body
        except SyntaxError:
            continue
        for statement in statements:
            if isinstance(statement, ast.Import):
                modules.update(alias.name for alias in statement.names)
            elif isinstance(statement, ast.ImportFrom) and statement.level == 0:
                modules.add(statement.module)
    return frozenset(modules)


@functools.cache
def _zygote_home() -> Path:
    """The zygotes' working and cache directory (the judges get the submission's): removed at exit."""
    home = Path(tempfile.mkdtemp(prefix="judges-"))
    atexit.register(shutil.rmtree, home, True)
    return home


def earlier_chapters(chapter: str) -> set[str]:
    """The other chapters whose graded names this chapter's exercises use."""
    return {exercise_defining(n).chapter for e in exercises_of(chapter) for n in e.uses} - {chapter}


def can_drop_privileges() -> bool:
    """Root, and Python, the venv and the project readable by nobody (a pyenv under /root is not)."""
    if os.geteuid() != 0:
        return False
    import sysconfig
    needed = {Path(sys.base_prefix), Path(sys.prefix), Path(sysconfig.get_paths()["stdlib"]),
              Path(sysconfig.get_paths()["purelib"]), PROJECT}
    for path in needed:
        for folder in [path, *path.parents]:
            if folder.exists() and not folder.stat().st_mode & 0o001:  # others may not traverse it
                return False
    return True


def _process_env(work: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPY"))}
    env["PYTHONPATH"] = os.pathsep.join([str(PROJECT), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")  # many processes share the cores
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["MPLBACKEND"] = "Agg"
    for variable in ("HOME", "MPLCONFIGDIR", "TMPDIR", "XDG_CACHE_HOME"):
        env[variable] = str(work)  # the only place the contestant can write once it is nobody
    return env


def _graders_state() -> list[tuple[str, int, int, int]]:
    """Size, modification and change time of every grader, grading and reference file: cheap to
    take, and the change time cannot be set back without changing the clock (a capability)."""
    files = sorted(PACKAGE.rglob("*.py")) + sorted(SOLUTIONS.glob("*.ipynb"))
    return [(str(p), p.stat().st_size, p.stat().st_mtime_ns, p.stat().st_ctime_ns) for p in files if p.exists()]


def _stop(judge: subprocess.Popen, outcomes_file: Path, key: bytes) -> None:
    """End the judge, its contestants and anything they forked."""
    if judge.poll() is None:
        _signal_group(judge.pid, signal.SIGTERM)  # the judge kills its contestant, then exits
        try:
            judge.wait(timeout=2)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(judge.pid, signal.SIGKILL)
    judge.wait()
    records, _ = protocol.read_records(outcomes_file, key)
    for record in of_type(records, protocol.CONTESTANT):
        if isinstance(record.get("pgid"), int):
            _signal_group(record["pgid"], signal.SIGKILL)


def _signal_group(pgid: int, signum: int) -> None:
    try:
        os.killpg(pgid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, size: int = 2000) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - size))
            return f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""


def _status(records, timed_out, returncode, timeout, stderr) -> tuple[str, str]:
    if of_type(records, DONE):
        return "ok", ""
    if timed_out:
        return "timeout", f"grading stopped after {timeout:g} s (an endless loop or a very slow cell?)"
    if of_type(records, LOAD_TIMEOUT):
        return "timeout", "loading the notebook's definitions took too long (an endless loop at the top level?)"
    last_line = next((l for l in reversed(stderr.strip().splitlines()) if l.strip()), "")
    if "MemoryError" in stderr or "can't allocate" in stderr or returncode == -signal.SIGKILL:
        return "out_of_memory", f"the submission ran out of memory ({last_line[:200]})"
    return "crashed", f"the grading process exited with code {returncode} ({last_line[:300]})"
