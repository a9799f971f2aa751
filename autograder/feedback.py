"""Per-student HTML feedback: points per exercise, the reasons for every lost point, the
misconception named with its explanation and the section that teaches it.

Feedback is made from a result record only: it never contains the graders' source, the
reference's code or the instructor-only tracebacks, and every learner-supplied string is
escaped.
"""

from __future__ import annotations

import html
from pathlib import Path

from autograder.exercises import CHAPTERS
from autograder.misconceptions import MISCONCEPTIONS
from autograder.results import safe_name

STYLE = """
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
table { border-collapse: collapse; width: 100%; } td, th { padding: .35rem .6rem; border-bottom: 1px solid #ddd; }
th { text-align: left; } .full { color: #1a7f37; } .lost { color: #b42318; } .note { color: #555; font-size: .92em; }
li { margin: .3rem 0; } code { background: #f3f3f3; padding: 0 .2rem; }
"""


def without_hint(message: str, misconception) -> str:
    """The check's message less the "[misconception id: hint]" that probes.CheckFailed appends,
    since the page states the misconception once, in its own note."""
    if misconception is None:
        return message
    return message.replace(f" [misconception {misconception.id}: {misconception.hint}]", "").strip() or message


def feedback_html(record: dict) -> str:
    chapter = record.get("chapter")
    title = CHAPTERS[chapter].title if chapter in CHAPTERS else "unknown chapter"
    e = html.escape
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Feedback: {e(title)}</title>",
             f"<style>{STYLE}</style></head><body>",
             f"<h1>{e(title)}</h1>",
             f"<p>{e(record.get('student', ''))}: <strong>{record.get('total', 0):g} / "
             f"{record.get('max_total', 0):g}</strong> points.</p>"]
    if record.get("status") != "ok":
        parts.append(f"<p class='lost'>Grading did not finish normally ({e(record.get('status', '?'))}): "
                     f"{e(record.get('detail', ''))}</p>")
    parts.append("<table><tr><th>exercise</th><th>points</th></tr>")
    for exercise in record.get("exercises", []):
        css = "full" if exercise["points"] == exercise["max_points"] else "lost"
        parts.append(f"<tr><td><code>{e(exercise['name'])}</code></td>"
                     f"<td class='{css}'>{exercise['points']:g} / {exercise['max_points']:g}</td></tr>")
    parts.append("</table>")
    for exercise in record.get("exercises", []):
        lost = [c for c in exercise["checks"] if c["outcome"] != "passed"]
        if not lost:
            continue
        parts.append(f"<h2><code>{e(exercise['name'])}</code></h2><ul>")
        for check in lost:
            misconception = MISCONCEPTIONS.get(check.get("misconception") or "")
            message = without_hint(check["message"] or check["outcome"], misconception)
            parts.append(f"<li><strong>-{check['max_points']:g}</strong> {e(check['test'].removeprefix('test_').replace('_', ' '))}: "
                         f"{e(message)}")
            if misconception:
                parts.append(f"<br><span class='note'>Likely misconception <code>{e(misconception.id)}</code>: "
                             f"{e(misconception.hint)}. Reread the section \u201c{e(misconception.section)}\u201d "
                             f"of the chapter.</span>")
            parts.append("</li>")
        parts.append("</ul>")
    if record.get("problems"):
        parts.append("<h2>What could not be loaded</h2><ul>")
        parts += [f"<li>{e(p)}</li>" for p in record["problems"]]
        parts.append("</ul>")
    parts.append("<p class='note'>The hidden graders check more than the visible checks in the notebook; "
                 "every lost point above says which check failed and why.</p></body></html>")
    return "\n".join(parts)


def write_feedback(records: list[dict], out: Path) -> list[Path]:
    written = []
    for record in records:
        path = Path(out) / "feedback" / safe_name(record["student"]) / f"{record.get('chapter') or 'unknown'}.html"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(feedback_html(record), encoding="utf-8")
        written.append(path)
    return written

