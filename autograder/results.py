"""One result type for a graded notebook; the table, JSON and nbgrader views are made from it."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from autograder.misconceptions import MISCONCEPTIONS


@dataclass
class CheckResult:
    test: str
    outcome: str  # "passed", "failed" or "not_run"
    points: float
    max_points: float
    message: str = ""
    misconception: str | None = None
    trace: str = ""  # for instructors only: never shown in a learner's feedback


@dataclass
class ExerciseResult:
    id: str
    name: str
    points: float
    max_points: float
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [c.message for c in self.checks if c.outcome != "passed" and c.message]


@dataclass
class GradeResult:
    notebook: str
    chapter: str | None
    # "ok": graded; "timeout", "crashed", "out_of_memory": the grading process ended early
    # (finished checks keep their points); "invalid": not a notebook of this course.
    status: str
    detail: str = ""
    exercises: list[ExerciseResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # what the loader could not load
    warnings: list[str] = field(default_factory=list)  # for the instructor: something to check by hand
    seconds: float = 0.0

    @property
    def total(self) -> float:
        return sum(e.points for e in self.exercises)

    @property
    def max_total(self) -> float:
        return sum(e.max_points for e in self.exercises)

    def to_dict(self, include_traces: bool = True) -> dict:
        data = asdict(self)
        data["total"], data["max_total"] = self.total, self.max_total
        if not include_traces:
            for exercise in data["exercises"]:
                for check in exercise["checks"]:
                    check.pop("trace")
        return data

    def to_json(self, include_traces: bool = True) -> str:
        return json.dumps(self.to_dict(include_traces), indent=2)

    def table(self) -> str:
        """A plain-text report: one row per exercise, then each lost point with its reason."""
        lines = [f"{self.notebook}: chapter {self.chapter or '?'}, status {self.status}"
                 + (f" ({self.detail})" if self.detail else "")]
        width = max([len(e.id) for e in self.exercises] + [8])
        lines.append(f"  {'exercise'.ljust(width)}  points")
        for exercise in self.exercises:
            lines.append(f"  {exercise.id.ljust(width)}  {_num(exercise.points)}/{_num(exercise.max_points)}")
            for check in exercise.checks:
                if check.outcome == "passed":
                    continue
                reason = check.message or check.outcome
                lines.append(f"      - {check.test} (-{_num(check.max_points)}): {reason}")
                if check.misconception:
                    m = MISCONCEPTIONS[check.misconception]
                    lines.append(f"        see the section \"{m.section}\"")
        lines.append(f"  {'total'.ljust(width)}  {_num(self.total)}/{_num(self.max_total)}")
        for problem in self.problems:
            lines.append(f"  loader: {problem}")
        for warning in self.warnings:
            lines.append(f"  WARNING: {warning}")
        return "\n".join(lines)


def safe_name(name: str) -> str:
    """A student id turned into a file or folder name that cannot escape its directory."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".") or "_"


def _num(x: float) -> str:
    return f"{x:g}"
