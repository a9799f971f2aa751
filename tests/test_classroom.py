"""A whole class: layouts, CSV, summary, feedback, resuming after kill -9, Dask, exports."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import pytest

from autograder.classroom import find_submissions, grade_class, read_records
from conftest import COURSE, PROJECT, SOLUTIONS, cores_per_worker, edited_solution

CHAPTER = "01_self_attention"
NOTEBOOK = f"{CHAPTER}.ipynb"
NO_SCALING = ("scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])", "scores = q @ k.transpose(-2, -1)")


@pytest.fixture
def small_class(tmp_path):
    """nbgrader's submitted/ layout: a correct, an untouched and a buggy submission."""
    root = tmp_path / "submitted"
    notebooks = {"alice": SOLUTIONS / NOTEBOOK, "bob": COURSE / NOTEBOOK,
                 "carol": edited_solution(tmp_path, CHAPTER, [NO_SCALING], name="carol.ipynb")}
    for student, notebook in notebooks.items():
        (root / student / CHAPTER).mkdir(parents=True)
        shutil.copyfile(notebook, root / student / CHAPTER / NOTEBOOK)
    return root


def grade_all(*args):
    return subprocess.run([sys.executable, "-m", "autograder", "grade-all", *map(str, args), "--quiet"],
                          cwd=PROJECT, capture_output=True, text=True)


def test_submissions_are_found_in_each_layout(tmp_path, small_class):
    assert [(s.student, s.path.name) for s in find_submissions(small_class)] == \
        [("alice", NOTEBOOK), ("bob", NOTEBOOK), ("carol", NOTEBOOK)]
    flat = tmp_path / "flat"
    (flat / ".ipynb_checkpoints").mkdir(parents=True)
    shutil.copyfile(SOLUTIONS / NOTEBOOK, flat / "dora.ipynb")
    shutil.copyfile(SOLUTIONS / NOTEBOOK, flat / ".ipynb_checkpoints" / "dora-checkpoint.ipynb")
    assert [s.student for s in find_submissions(flat)] == ["dora"]


@pytest.mark.slow
def test_grade_all_writes_csv_summary_and_feedback_then_skips_what_is_done(tmp_path, small_class):
    out = tmp_path / "results"
    done = grade_all(small_class, "--out", out, "--jobs", "2")
    assert done.returncode == 0, done.stderr
    with open(out / "class.csv") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    assert {s: float(r["total"]) for s, r in rows.items()} == {"alice": 10, "bob": 0, "carol": 7}
    assert float(rows["carol"]["ex01_scaled_dot_product_attention"]) == 1

    summary = json.loads((out / "summary.json").read_text())
    assert summary["submissions"] == 3 and summary["status"] == {"ok": 3}
    assert summary["exercises"]["ex01_causal_mask"]["distribution"] == {"0": 1, "1": 2}
    assert summary["misconceptions"][0]["id"] == "no_scaling" and summary["misconceptions"][0]["submissions"] == 1
    assert (out / "totals.png").stat().st_size > 1000 and "no_scaling" in (out / "summary.md").read_text()

    feedback = (out / "feedback" / "carol" / f"{CHAPTER}.html").read_text()
    assert "no_scaling" in feedback and "Why divide by" in feedback and "7 / 10" in feedback
    assert "def test_" not in feedback and "Traceback" not in feedback

    written = {p: p.stat().st_mtime_ns for p in (out / "students").rglob("*.json")}
    assert grade_all(small_class, "--out", out).returncode == 0
    assert {p: p.stat().st_mtime_ns for p in written} == written  # nothing regraded
    notebook = small_class / "bob" / CHAPTER / NOTEBOOK
    shutil.copyfile(SOLUTIONS / NOTEBOOK, notebook)  # bob resubmits
    assert grade_all(small_class, "--out", out).returncode == 0
    changed = [p.parent.name for p in written if p.stat().st_mtime_ns != written[p]]
    assert changed == ["bob"]
    assert json.loads((out / "students" / "bob" / f"{CHAPTER}.json").read_text())["total"] == 10


@pytest.mark.slow
def test_a_run_killed_with_sigkill_resumes_without_losing_or_regrading(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    for i in range(6):
        shutil.copyfile(SOLUTIONS / NOTEBOOK, root / f"student{i}.ipynb")
    out = tmp_path / "results"
    command = [sys.executable, "-m", "autograder", "grade-all", str(root), "--out", str(out), "--jobs", "1",
               "--quiet"]
    run = subprocess.Popen(command, cwd=PROJECT, start_new_session=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while len(list((out / "students").glob("*/*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    finished = {p: p.stat().st_mtime_ns for p in (out / "students").glob("*/*.json")}
    assert 2 <= len(finished) < 6
    assert all(json.loads(p.read_text())["total"] == 10 for p in finished)  # whole files only
    assert grade_all(root, "--out", out).returncode == 0
    assert {p: p.stat().st_mtime_ns for p in finished} == finished
    records = read_records(out)
    assert len(records) == 6 and all(r["total"] == 10 for r in records)


@pytest.mark.slow
def test_the_same_code_path_runs_on_a_dask_cluster(tmp_path, small_class):
    from distributed import LocalCluster
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        records = grade_class(small_class, tmp_path / "results", scheduler=cluster.scheduler_address,
                              progress=False)
    assert {r["student"]: r["total"] for r in records} == {"alice": 10, "bob": 0, "carol": 7}


@pytest.mark.slow
def test_results_go_into_the_nbgrader_gradebook(tmp_path, small_class):
    from nbgrader.api import Gradebook

    from autograder.release import generate_assignment, make_nbgrader_course
    course = make_nbgrader_course(tmp_path / "course", link=False)
    generate_assignment(course, CHAPTER)
    records = grade_class(small_class, tmp_path / "results", jobs=cores_per_worker(), progress=False)
    done = subprocess.run([sys.executable, "-m", "autograder", "export-gradebook", str(tmp_path / "results"),
                           str(course)], cwd=PROJECT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        scores = {r["student"]: gradebook.find_submission(CHAPTER, r["student"]).score for r in records}
    assert scores == {"alice": 10, "bob": 0, "carol": 7}


@pytest.mark.slow
def test_gradescope_bundle_runs_against_a_simulated_autograder_layout(tmp_path):
    bundle = tmp_path / "gradescope.zip"
    done = subprocess.run([sys.executable, "-m", "autograder", "gradescope", "--out", str(bundle)],
                          cwd=PROJECT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    root = tmp_path / "autograder"
    with zipfile.ZipFile(bundle) as z:
        assert {"setup.sh", "run_autograder", "requirements.txt"} <= set(z.namelist())
        z.extractall(root / "source")
    (root / "submission").mkdir()
    edited_solution(root / "submission", CHAPTER, [NO_SCALING], name="my_work.ipynb")
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    results = json.loads((root / "results" / "results.json").read_text())
    assert results["score"] == 7
    tests = {t["number"]: t for t in results["tests"]}
    assert set(tests) == {"ex01_scaled_dot_product_attention", "ex01_causal_mask", "ex01_masked_softmax",
                          "ex01_self_attention"}
    sdpa = tests["ex01_scaled_dot_product_attention"]
    assert (sdpa["score"], sdpa["max_score"]) == (1, 4) and "no_scaling" in sdpa["output"]
