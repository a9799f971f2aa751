"""grade-all's feedback pages: one HTML file per student and chapter, under ``OUT/feedback/``.

Each page is ``views.feedback_html`` of the student's record read back as a GradeResult: the
points per exercise, the reason for every lost point, and the misconception it shows with the
section that teaches it. It never contains the graders' source, the reference's code or the
instructor-only traces, and every learner-supplied string is escaped by the template.
"""

from __future__ import annotations

from pathlib import Path

from autograder.results import GradeResult, safe_name
from autograder.views import feedback_html as page


def feedback_html(record: dict) -> str:
    """The page of one grade-all record (a GradeResult's JSON form, with the ``student``)."""
    return page(GradeResult.from_dict(record), record.get("student", ""))


def write_feedback(records: list[dict], out: Path) -> list[Path]:
    written = []
    for record in records:
        path = Path(out) / "feedback" / safe_name(record["student"]) / f"{record.get('chapter') or 'unknown'}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(feedback_html(record), encoding="utf-8")
        written.append(path)
    return written
