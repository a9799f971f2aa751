"""A whole class: find the submissions, grade them in parallel, resume after a crash, summarise.

    python -m autograder grade-all SUBMISSIONS_DIR [--out DIR] [--jobs N] [--scheduler ADDRESS]

Layouts: nbgrader's ``submitted/STUDENT/ASSIGNMENT/NOTEBOOK.ipynb``, a folder per student
``STUDENT/NOTEBOOK.ipynb``, or a flat folder of ``STUDENT.ipynb``. Each graded submission is
written at once, atomically, to ``OUT/students/STUDENT/CHAPTER.json`` with two fingerprints:
the submission's bytes and the graders' sources. A re-run skips a submission only when both
are unchanged, so a fixed grader regrades everyone and a killed run loses nothing finished.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import statistics
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from autograder.exercises import CHAPTERS, exercises_of
from autograder.scoring import detect_chapter
from autograder.paths import PACKAGE, SOLUTIONS
from autograder.feedback import write_feedback
from autograder.misconceptions import MISCONCEPTIONS
from autograder.results import safe_name


@dataclass(frozen=True)
class Submission:
    student: str
    path: Path


def find_submissions(root: Path) -> list[Submission]:
    """Every notebook under ``root`` with the student it belongs to, in a stable order."""
    root = Path(root)
    found = []
    for path in sorted(root.rglob("*.ipynb")):
        parts = path.relative_to(root).parts
        if any(p.startswith(".") for p in parts):
            continue  # .ipynb_checkpoints and other hidden folders
        student = path.stem if len(parts) == 1 else parts[0]
        found.append(Submission(student, path))
    return found


def graders_fingerprint() -> str:
    """Changes whenever the graders, the catalogue, the grading code or a reference change."""
    digest = hashlib.sha256()
    files = sorted(PACKAGE.rglob("*.py")) + sorted(SOLUTIONS.glob("*.ipynb"))
    for path in files:
        digest.update(path.relative_to(PACKAGE.parent).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def file_fingerprint(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def result_path(out: Path, student: str, chapter: str | None) -> Path:
    return out / "students" / safe_name(student) / f"{chapter or 'unknown'}.json"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)  # a kill leaves either the old file or the new one, never half


def grade_one(path: str, grade_kwargs: dict) -> dict:
    """Grade one submission; plain data in and out, so that it can run on a Dask worker."""
    from autograder.sandbox import grade_submission
    return grade_submission(path, **grade_kwargs).to_dict()


def grade_class(root: Path, out: Path, jobs: int | None = None, scheduler: str | None = None,
                progress: bool = True, **grade_kwargs) -> list[dict]:
    """Grade every submission under ``root`` not already graded with these graders; summarise."""
    out = Path(out)
    graders = graders_fingerprint()
    pending, records = [], []
    for submission in find_submissions(root):
        chapter = detect_chapter(submission.path)
        target = result_path(out, submission.student, chapter)
        fingerprint = file_fingerprint(submission.path)
        previous = _read_json(target)
        if previous and previous.get("submission_sha256") == fingerprint \
                and previous.get("graders_sha256") == graders:
            records.append(previous)
        else:
            pending.append((submission, target, fingerprint))

    def finished(item, result):
        submission, target, fingerprint = item
        record = {"student": submission.student, "submission": str(submission.path),
                  "submission_sha256": fingerprint, "graders_sha256": graders, **result}
        _write_atomically(target, json.dumps(record, indent=2) + "\n")
        records.append(record)
        if record.get("warnings"):
            raise RuntimeError(f"stopped after {submission.path}: " + "; ".join(record["warnings"]))

    bar = _progress(len(pending), progress)
    if scheduler:
        from distributed import Client, as_completed as dask_completed
        with Client(scheduler) as client:
            futures = {client.submit(grade_one, str(item[0].path), grade_kwargs, pure=False): item
                       for item in pending}
            for future in dask_completed(futures):
                finished(futures[future], future.result())
                bar.update(1)
    else:
        with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
            futures = {pool.submit(grade_one, str(item[0].path), grade_kwargs): item for item in pending}
            for future in as_completed(futures):
                finished(futures[future], future.result())
                bar.update(1)
    bar.close()
    records.sort(key=lambda r: (r["student"], r.get("chapter") or ""))
    write_reports(records, out)
    return records


def read_records(out: Path) -> list[dict]:
    """The per-student records that grade-all wrote under ``out``."""
    records = [_read_json(p) for p in sorted((Path(out) / "students").glob("*/*.json"))]
    return [r for r in records if r]


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _progress(total: int, enabled: bool):
    from tqdm import tqdm
    return tqdm(total=total, desc="grading", unit="submission", disable=not enabled or total == 0)


# ---- reports: views of the per-student records --------------------------------------------

def write_reports(records: list[dict], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    chapters = [c for c in CHAPTERS if any(r.get("chapter") == c for r in records)]
    columns = [e.id for c in chapters for e in exercises_of(c)]
    students = sorted({r["student"] for r in records})
    by_student = {s: [r for r in records if r["student"] == s] for s in students}

    rows = []
    for student in students:
        row = {"student": student}
        for record in by_student[student]:
            for exercise in record.get("exercises", []):
                row[exercise["id"]] = exercise["points"]
        row["total"] = sum(r.get("total", 0) for r in by_student[student])
        row["status"] = ";".join(sorted({r.get("status", "?") for r in by_student[student]}))
        rows.append(row)
    with open(out / "class.csv", "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["student", *columns, "total", "status"])
        writer.writeheader()
        writer.writerows(rows)

    summary = summarise(records, columns)
    _write_atomically(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    (out / "summary.md").write_text(summary_markdown(summary), encoding="utf-8")
    _histogram([row["total"] for row in rows], out / "totals.png")
    write_feedback(records, out)


def summarise(records: list[dict], columns: list[str]) -> dict:
    per_exercise = {}
    for exercise_id in columns:
        points = [e["points"] for r in records for e in r.get("exercises", []) if e["id"] == exercise_id]
        maximum = next((e["max_points"] for r in records for e in r.get("exercises", []) if e["id"] == exercise_id), 0)
        per_exercise[exercise_id] = {
            "max_points": maximum, "graded": len(points),
            "mean": round(statistics.fmean(points), 3) if points else None,
            "distribution": {f"{k:g}": v for k, v in sorted(Counter(points).items())},
        }
    misconceptions = Counter(c["misconception"] for r in records for e in r.get("exercises", [])
                             for c in e["checks"] if c.get("misconception"))
    # One count per submission and misconception: several checks may name the same one.
    per_submission = Counter(m for r in records for m in {c["misconception"] for e in r.get("exercises", [])
                                                          for c in e["checks"] if c.get("misconception")})
    return {
        "submissions": len(records),
        "students": len({r["student"] for r in records}),
        "status": dict(Counter(r.get("status", "?") for r in records)),
        "exercises": per_exercise,
        "misconceptions": [{"id": m, "submissions": n, "checks": misconceptions[m],
                            "hint": MISCONCEPTIONS[m].hint} for m, n in per_submission.most_common()],
    }


def summary_markdown(summary: dict) -> str:
    lines = [f"# Class summary: {summary['submissions']} submissions from {summary['students']} students", "",
             "status: " + ", ".join(f"{k} {v}" for k, v in summary["status"].items()), "",
             "| exercise | max | graded | mean | distribution (points: count) |", "| --- | --- | --- | --- | --- |"]
    for exercise_id, s in summary["exercises"].items():
        distribution = ", ".join(f"{k}: {v}" for k, v in s["distribution"].items())
        lines.append(f"| {exercise_id} | {s['max_points']:g} | {s['graded']} | {s['mean']} | {distribution} |")
    lines += ["", "## Most common misconceptions", "", "| misconception | submissions | what it is |",
              "| --- | --- | --- |"]
    lines += [f"| {m['id']} | {m['submissions']} | {m['hint']} |" for m in summary["misconceptions"]]
    return "\n".join(lines) + "\n"


def _histogram(totals: list[float], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(figsize=(6, 3.5))
    axes.hist(totals, bins=max(1, min(20, len(set(totals)))), color="#4477aa", edgecolor="white")
    axes.set(title="Total points per student", xlabel="points", ylabel="students")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
