"""The views of a GradeResult, in one place. Each takes the result and returns text:

    table(result)                 the CLI's plain-text report
    as_json(result)               what ``grade --json`` writes (GradeResult.to_dict, as JSON)
    feedback_html(result, student)  a learner's HTML page, from templates/feedback.html.j2
    gradescope_results(results)   Gradescope's results.json, one test per exercise
    nbgrader_report(exercise)     what an nbgrader hidden test cell prints

A lost check is shown as its message, then, when a misconception explains it, the line that
``misconception_note`` writes (the id, the hint and the section that teaches the right
idea). That function is the only place a misconception is put into words, and no view quotes
a check's trace: traces are for instructors, in the JSON only.
"""

from __future__ import annotations

import functools
import json

from autograder.exercises import CHAPTERS
from autograder.misconceptions import MISCONCEPTIONS
from autograder.paths import PACKAGE
from autograder.results import CheckResult, ExerciseResult, GradeResult

TEMPLATES = PACKAGE / "templates"


def misconception_note(misconception_id: str | None) -> str:
    """The misconception named by a failed check, in words: "" when none (or not in the catalogue)."""
    m = MISCONCEPTIONS.get(misconception_id or "")
    if m is None:
        return ""
    return f"Likely misconception {m.id}: {m.hint}; see the section \"{m.section}\""


def reason(check: CheckResult) -> str:
    """Why a check lost its points: its message, or its outcome when it has none."""
    return check.message or check.outcome


def lost_checks(exercise: ExerciseResult) -> list[CheckResult]:
    return [c for c in exercise.checks if c.lost]


def table(result: GradeResult) -> str:
    """A plain-text report: one row per exercise, then each lost point with its reason."""
    lines = [f"{result.notebook}: chapter {result.chapter or '?'}, status {result.status}"
             + (f" ({result.detail})" if result.detail else "")]
    width = max([len(e.id) for e in result.exercises] + [8])
    lines.append(f"  {'exercise'.ljust(width)}  points")
    for exercise in result.exercises:
        lines.append(f"  {exercise.id.ljust(width)}  {_num(exercise.points)}/{_num(exercise.max_points)}")
        for check in lost_checks(exercise):
            lines.append(f"      - {check.test} (-{_num(check.max_points)}): {reason(check)}")
            if note := misconception_note(check.misconception):
                lines.append(f"        {note}")
    lines.append(f"  {'total'.ljust(width)}  {_num(result.total)}/{_num(result.max_total)}")
    lines += [f"  loader: {problem}" for problem in result.problems]
    lines += [f"  WARNING: {warning}" for warning in result.warnings]
    return "\n".join(lines)


def as_json(result: GradeResult, include_traces: bool = True) -> str:
    return json.dumps(result.to_dict(include_traces), indent=2)


def feedback_html(result: GradeResult, student: str = "") -> str:
    """A learner's feedback page: points per exercise, and every lost point with its reason and
    misconception. Built from the result's fields only, escaped by the template engine."""
    chapter = CHAPTERS.get(result.chapter or "")
    return _templates().get_template("feedback.html.j2").render(
        title=chapter.title if chapter else "unknown chapter", student=student, result=result,
        lost=[(e, lost_checks(e)) for e in result.exercises if lost_checks(e)])


def gradescope_results(results: list[GradeResult]) -> dict:
    """Gradescope's results format: one test per exercise, the total as the score."""
    tests, output = [], []
    for result in results:
        if result.status != "ok":
            output.append(f"{result.notebook}: grading did not finish normally ({result.status}): {result.detail}")
        for exercise in result.exercises:
            lines = []
            for check in lost_checks(exercise):
                lines.append(f"-{_num(check.max_points)} {check.test}: {reason(check)}")
                if note := misconception_note(check.misconception):
                    lines.append(f"   {note}")
            tests.append({"name": f"{result.chapter}: {exercise.name}", "number": exercise.id,
                          "score": exercise.points, "max_score": exercise.max_points,
                          "output": "\n".join(lines) or "all checks passed", "visibility": "visible"})
    if not results:
        output.append("no notebook (.ipynb) found in the submission")
    return {"score": sum(t["score"] for t in tests), "tests": tests, "output": "\n".join(output),
            "stdout_visibility": "hidden"}


def nbgrader_report(exercise: ExerciseResult) -> str:
    """What a hidden test cell prints: the points, then each lost check (never the tests' source)."""
    lines = [f"{exercise.id}: {_num(exercise.points)}/{_num(exercise.max_points)} points"]
    for check in lost_checks(exercise):
        lines.append(f"  - {check.test}: {reason(check)}")
        if note := misconception_note(check.misconception):
            lines.append(f"    {note}")
    return "\n".join(lines)


@functools.cache
def _templates():
    from jinja2 import Environment, FileSystemLoader, StrictUndefined  # only the HTML view needs Jinja2
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)
    environment.filters.update(num=_num, note=misconception_note, reason=reason,
                               check_title=lambda test: test.removeprefix("test_").replace("_", " "))
    return environment


def _num(x: float) -> str:
    return f"{x:g}"
