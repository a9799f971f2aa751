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
from autograder.views import gradescope_results

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
        for path in package_files():
            bundle.write(path, path.relative_to(PROJECT).as_posix())
        for path in sorted(SOLUTIONS.glob("*.ipynb")):
            bundle.write(path, path.relative_to(PROJECT).as_posix())
    return out


def package_files() -> list[Path]:
    """The autograder package as it runs: its modules and the views' templates."""
    return sorted(p for p in PACKAGE.rglob("*") if p.suffix in {".py", ".j2"} and "__pycache__" not in p.parts)


def run(submission: Path, out: Path) -> dict:
    """Grade every notebook of a Gradescope submission and write results.json."""
    from autograder.sandbox import grade_submission
    notebooks = sorted(p for p in Path(submission).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    results = [grade_submission(p) for p in notebooks]
    data = gradescope_results([r for r in results if r.status != "invalid"] or results)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data
