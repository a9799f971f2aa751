"""One result type for a graded notebook, and its JSON form (what ``grade --json`` and ``grade-all``
write, and what ``grade-all``, ``export-gradebook`` and the feedback pages read back).

A failed check keeps its ``message`` (what went wrong) and its ``misconception`` (the catalogue id
that explains it) apart: the views in ``autograder.views`` add the misconception's hint and
section, each once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields


@dataclass
class CheckResult:
    test: str
    outcome: str  # "passed", "failed" or "not_run"
    points: float
    max_points: float
    message: str = ""  # what went wrong, without the misconception's hint
    misconception: str | None = None  # a catalogue id (autograder.misconceptions), or None
    trace: str = ""  # for instructors only: never shown in a learner's feedback

    @property
    def lost(self) -> bool:
        return self.outcome != "passed"


@dataclass
class ExerciseResult:
    id: str
    name: str
    points: float
    max_points: float
    checks: list[CheckResult] = field(default_factory=list)

    @property
    def reasons(self) -> list[str]:
        return [c.message for c in self.checks if c.lost and c.message]


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
        """The JSON form: the fields, plus ``total`` and ``max_total``; traces are instructor-only."""
        data = asdict(self)
        data["total"], data["max_total"] = self.total, self.max_total
        if not include_traces:
            for exercise in data["exercises"]:
                for check in exercise["checks"]:
                    check.pop("trace")
        return data

    @classmethod
    def from_dict(cls, data: dict) -> GradeResult:
        """The result back from its JSON form. Keys that are not fields (``total``, and what
        grade-all adds: ``student``, ``submission``, the fingerprints) are left out; a record
        without a notebook, chapter or status gets "", None and "?"."""
        exercises = [ExerciseResult(**{**_known(ExerciseResult, e, "checks"),
                                       "checks": [CheckResult(**_known(CheckResult, c)) for c in e.get("checks", [])]})
                     for e in data.get("exercises", [])]
        return cls(**{"notebook": "", "chapter": None, "status": "?", **_known(cls, data, "exercises"),
                      "exercises": exercises})


def _known(kind, data: dict, *leave_out: str) -> dict:
    names = {f.name for f in fields(kind)} - set(leave_out)
    return {k: v for k, v in data.items() if k in names}


def safe_name(name: str) -> str:
    """A student id turned into a file or folder name that cannot escape its directory."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name).lstrip(".") or "_"
