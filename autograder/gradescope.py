"""A Gradescope autograder bundle, and the command its run_autograder calls.

    python -m autograder gradescope --out gradescope.zip

builds a zip with Gradescope's two entry points at its root, ``setup.sh`` (installs the
pinned requirements) and ``run_autograder`` (grades every notebook in
/autograder/submission), and the grading sources: the autograder package, the reference
notebooks and requirements.txt. ``run_autograder`` writes /autograder/results/results.json
in Gradescope's format, one test per exercise, each with the reasons for lost points.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from autograder.paths import PACKAGE, PROJECT, SOLUTIONS
from autograder.misconceptions import MISCONCEPTIONS

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once when the autograder image is built.
set -euo pipefail
apt-get update && apt-get install -y python3 python3-pip python3-venv
python3 -m venv /autograder/venv
/autograder/venv/bin/pip install -r /autograder/source/requirements.txt
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission. AUTOGRADER_ROOT and PYTHON exist for local tests.
set -euo pipefail
ROOT="${AUTOGRADER_ROOT:-/autograder}"
PYTHON="${PYTHON:-$ROOT/venv/bin/python}"
cd "$ROOT/source"
"$PYTHON" -m autograder gradescope-run "$ROOT/submission" "$ROOT/results/results.json"
"""


def build_bundle(out: Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, text in [("setup.sh", SETUP_SH), ("run_autograder", RUN_AUTOGRADER)]:
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16  # executable, as Gradescope requires
            bundle.writestr(info, text)
        bundle.write(PROJECT / "requirements.txt", "requirements.txt")
        for path in sorted(PACKAGE.rglob("*.py")):
            bundle.write(path, path.relative_to(PROJECT).as_posix())
        for path in sorted(SOLUTIONS.glob("*.ipynb")):
            bundle.write(path, path.relative_to(PROJECT).as_posix())
    return out


def results_json(records: list[dict]) -> dict:
    """Gradescope's results format: one test per exercise, the total as the score."""
    tests, output = [], []
    for record in records:
        if record["status"] != "ok":
            output.append(f"{record['notebook']}: grading did not finish normally ({record['status']}): "
                          f"{record['detail']}")
        for exercise in record["exercises"]:
            lines = []
            for check in exercise["checks"]:
                if check["outcome"] == "passed":
                    continue
                lines.append(f"-{check['max_points']:g} {check['test']}: {check['message']}")
                if check.get("misconception") in MISCONCEPTIONS:
                    m = MISCONCEPTIONS[check["misconception"]]
                    lines.append(f"   likely misconception {m.id}: {m.hint} (see \"{m.section}\")")
            tests.append({"name": f"{record['chapter']}: {exercise['name']}", "number": exercise["id"],
                          "score": exercise["points"], "max_score": exercise["max_points"],
                          "output": "\n".join(lines) or "all checks passed", "visibility": "visible"})
    if not records:
        output.append("no notebook (.ipynb) found in the submission")
    return {"score": sum(t["score"] for t in tests), "tests": tests, "output": "\n".join(output),
            "stdout_visibility": "hidden"}


def run(submission: Path, results: Path) -> dict:
    """Grade every notebook of a Gradescope submission and write results.json."""
    from autograder.sandbox import grade_submission
    notebooks = sorted(p for p in Path(submission).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    records = [grade_submission(p).to_dict(include_traces=False) for p in notebooks]
    data = results_json([r for r in records if r["status"] != "invalid"] or records)
    results = Path(results)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data
