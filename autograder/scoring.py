"""Scoring: which chapter a notebook is, the plan of checks, and outcome records turned into points.

The plan (each grader test's exercise and points) is read from the grader modules' source
with ``ast``, so the process that scores never imports torch or runs learner code: it turns
plain outcome records into a GradeResult. Running the graders (``pytest_plugin.run_graders``)
happens in the judge (CLI) or in the learner's kernel (nbgrader's hidden cells).
"""

from __future__ import annotations

import ast
import functools
import json
import threading
from pathlib import Path

from autograder.exercises import CHAPTERS, EXERCISES, exercises_of, grader_path
from autograder.misconceptions import MISCONCEPTIONS
from autograder.paths import SOLUTIONS
from autograder.results import CheckResult, ExerciseResult, GradeResult

# CPython 3.11's ast.parse is not thread-safe ("AST constructor recursion depth mismatch", fixed in
# 3.12), and grade-all scores submissions from several threads.
_AST_LOCK = threading.Lock()


@functools.cache
def plan(chapter: str) -> list[tuple[str, str, float]]:
    """(test function, exercise id, points) for every grader test of the chapter."""
    with _AST_LOCK:
        tree = ast.parse(grader_path(chapter).read_text(encoding="utf-8"))
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign)
                 for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value, ast.Constant)}
    checks, seen = [], set()
    for node in tree.body:
        if not (isinstance(node, ast.FunctionDef) and node.name.startswith("test_")):
            continue
        if node.name in seen:  # the later definition would silently replace the earlier one
            raise ValueError(f"{grader_path(chapter).name} defines {node.name} twice")
        seen.add(node.name)
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", None) == "exercise":
                exercise = decorator.args[0]
                exercise = constants[exercise.id] if isinstance(exercise, ast.Name) else exercise.value
                points = next(k.value.value for k in decorator.keywords if k.arg == "points")
                checks.append((node.name, exercise, float(points)))
    return checks


def detect_chapter(path: Path) -> str | None:
    """The chapter of a notebook: its metadata, else its cells' grade ids, else its file name."""
    try:
        notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        notebook = None
    if isinstance(notebook, dict):
        course = notebook.get("metadata", {}).get("course", {}) if isinstance(notebook.get("metadata"), dict) else {}
        if isinstance(course, dict) and course.get("chapter") in CHAPTERS:
            return course["chapter"]
        ids = {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in notebook.get("cells", [])
               if isinstance(c, dict) and isinstance(c.get("metadata"), dict)
               and isinstance(c["metadata"].get("nbgrader"), dict)}
        for exercise in EXERCISES.values():
            if exercise.id in ids:
                return exercise.chapter
    stem = Path(path).stem
    return next((c for c in CHAPTERS if stem.startswith(c) or c in stem), None)


@functools.cache
def secret_lines(chapter: str) -> frozenset[str]:
    """Lines of the graders' and the reference's code that feedback must never quote."""
    lines = set(grader_path(chapter).read_text(encoding="utf-8").splitlines())
    notebook = json.loads((SOLUTIONS / CHAPTERS[chapter].notebook).read_text(encoding="utf-8"))
    for cell in notebook["cells"]:
        if cell.get("cell_type") == "code":
            lines.update("".join(cell["source"]).splitlines())
    return frozenset(s for s in (line.strip() for line in lines) if len(s) >= 20)


def redact(outcome: dict, chapter: str) -> dict:
    """The outcome with any quotation of hidden source removed from its message."""
    message = str(outcome.get("message", ""))
    leaked = [line for line in secret_lines(chapter) if line in message]
    if not leaked:
        return outcome
    for line in sorted(leaked, key=len, reverse=True):
        message = message.replace(line, "[hidden]")
    return {**outcome, "message": message, "trace": "[a message quoting the hidden source was redacted]"}


def explain_missing(loaded_problems: list, name: str) -> str:
    """Why a graded name is missing, pointing at the problems of its own cell first."""
    exercise = next((e for e in EXERCISES.values() if e.name == name), None)
    own = [p for p in loaded_problems if exercise and getattr(p, "grade_id", None) == exercise.id]
    message = f"{name} is not defined"
    if own or loaded_problems:
        message += ": " + "; ".join(str(p) for p in (own or loaded_problems))
    return message


def score(notebook: str, chapter: str, outcomes: list[dict], status: str = "ok", detail: str = "",
          problems: list[str] = (), only: set[str] | None = None) -> GradeResult:
    """Turn outcome records into points, check by check, following the plan (not the records)."""
    by_test: dict[tuple[str, str], list[dict]] = {}
    for outcome in outcomes:
        by_test.setdefault((outcome.get("exercise"), outcome.get("test")), []).append(outcome)
    result = GradeResult(notebook=notebook, chapter=chapter, status=status, detail=detail, problems=list(problems))
    for exercise in exercises_of(chapter):
        if only is not None and exercise.id not in only:
            continue
        checks = []
        for test, exercise_id, points in plan(chapter):
            if exercise_id != exercise.id:
                continue
            records = by_test.get((exercise_id, test), [])
            failed = [r for r in records if r.get("outcome") != "passed"]
            if failed:
                first = failed[0]
                checks.append(CheckResult(test, "failed", 0.0, points, str(first.get("message", ""))[:2000],
                                          first.get("misconception") if first.get("misconception") in MISCONCEPTIONS
                                          else None, str(first.get("trace", ""))[:4000]))
            elif records:
                checks.append(CheckResult(test, "passed", points, points))
            else:
                reason = f"not run: grading ended early ({status})" if status != "ok" else "not run"
                checks.append(CheckResult(test, "not_run", 0.0, points, reason))
        result.exercises.append(ExerciseResult(exercise.id, exercise.name, sum(c.points for c in checks),
                                               sum(c.max_points for c in checks), checks))
    return result

