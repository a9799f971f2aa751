"""The CLI grades one notebook in a child process: full marks for the reference, zero without a
crash for the untouched release, and a result that says so for a hang or a crash."""

import argparse
import json
import re
import shlex
import subprocess
import sys

import pytest

from autograder import cli as cli_module
from autograder.exercises import CHAPTERS, exercises_of
from autograder.sandbox import grade_submission
from conftest import COURSE, PROJECT, SOLUTIONS, code_cell, edited_solution

CHAPTER = "01_self_attention"


def cli(*args):
    return subprocess.run([sys.executable, "-m", "autograder", *args], cwd=PROJECT, capture_output=True, text=True)


def test_grade_prints_a_table_and_writes_json(tmp_path):
    out = tmp_path / "result.json"
    done = cli("grade", str(SOLUTIONS / f"{CHAPTER}.ipynb"), "--json", str(out))
    assert done.returncode == 0, done.stderr
    assert "total                              10/10" in done.stdout
    result = json.loads(out.read_text())
    assert (result["status"], result["chapter"], result["total"], result["max_total"]) == ("ok", CHAPTER, 10, 10)
    assert [e["id"] for e in result["exercises"]] == [e.id for e in exercises_of(CHAPTER)]
    for exercise in result["exercises"]:
        assert exercise["points"] == exercise["max_points"] > 0
        assert {"test", "outcome", "message", "misconception", "points", "max_points"} <= set(exercise["checks"][0])


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_reference_gets_full_marks(chapter):
    result = grade_submission(SOLUTIONS / f"{chapter}.ipynb")
    assert result.status == "ok" and result.problems == []
    assert result.total == result.max_total == sum(e.points for e in exercises_of(chapter))


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_untouched_release_gets_zero_without_crashing(chapter):
    result = grade_submission(COURSE / f"{chapter}.ipynb")
    assert result.status == "ok" and result.total == 0
    for exercise in result.exercises:
        assert all(c.outcome == "failed" and c.message for c in exercise.checks)


def test_chapter_is_recognised_without_metadata_from_grade_ids(tmp_path):
    notebook = json.loads((SOLUTIONS / f"{CHAPTER}.ipynb").read_text())
    notebook["metadata"].pop("course")
    path = tmp_path / "renamed.ipynb"
    path.write_text(json.dumps(notebook))
    assert grade_submission(path).chapter == CHAPTER


def test_a_notebook_of_no_chapter_is_invalid(make_notebook):
    result = grade_submission(make_notebook(code_cell("x = 1"), name="other_course.ipynb"))
    assert (result.status, result.exercises) == ("invalid", [])


def test_an_endless_loop_in_a_solution_is_stopped_and_reported(make_notebook):
    path = make_notebook(
        code_cell("def causal_mask(n, device=None):\n    while True:\n        pass\n", "ex01_causal_mask"),
        chapter=CHAPTER)
    result = grade_submission(path, test_timeout=2)
    assert result.status == "ok"
    [causal] = [e for e in result.exercises if e.id == "ex01_causal_mask"]
    assert causal.points == 0 and "longer than 2 s" in causal.checks[0].message


def test_a_hang_at_load_time_times_out_and_still_reports_every_exercise(make_notebook):
    path = make_notebook(code_cell("import time\nclass Slow:\n    time.sleep(60)\n"), chapter=CHAPTER)
    result = grade_submission(path, timeout=8)
    assert result.status == "timeout" and result.total == 0
    assert [e.id for e in result.exercises] == [e.id for e in exercises_of(CHAPTER)]
    assert all(c.outcome == "not_run" for e in result.exercises for c in e.checks)


def test_a_process_exit_fails_its_checks_and_grading_goes_on_in_a_new_process(make_notebook):
    reference = (SOLUTIONS / f"{CHAPTER}.ipynb")
    from autograder import load_notebook
    import inspect
    causal = inspect.getsource(load_notebook(reference).causal_mask)
    path = make_notebook(
        code_cell("import torch"),
        code_cell(causal, "ex01_causal_mask"),
        code_cell("import os\ndef masked_softmax(X, valid_lens):\n    os._exit(7)\n", "ex01_masked_softmax"),
        chapter=CHAPTER)
    result = grade_submission(path)
    assert result.status == "ok"
    points = {e.id: e.points for e in result.exercises}
    assert points["ex01_causal_mask"] == 1 and points["ex01_masked_softmax"] == 0
    [softmax] = [e for e in result.exercises if e.id == "ex01_masked_softmax"]
    assert all("exit code 7" in c.message for c in softmax.checks)
    # SelfAttention is graded after the exits, by a restarted process that tells it is not defined
    assert all(c.outcome == "failed" and "not defined" in c.message for c in result.exercises[-1].checks)


@pytest.mark.slow
def test_diff_compares_a_run_with_the_reference_outputs_cell_by_cell(tmp_path):
    assert cli("diff", str(SOLUTIONS / f"{CHAPTER}.ipynb")).returncode == 0
    buggy = edited_solution(tmp_path, CHAPTER, [("scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])",
                                                  "scores = q @ k.transpose(-2, -1)")])
    done = cli("diff", str(buggy))
    assert done.returncode != 0 and "FAILED" in done.stdout


def readme_cli_commands() -> list[list[str]]:
    """The arguments of every ``python -m autograder COMMAND ...`` line in README.md's shell blocks."""
    readme = (PROJECT / "README.md").read_text()
    lines = [line for block in re.findall(r"```(?:bash|sh|shell)\n(.*?)```", readme, re.S) for line in block.splitlines()]
    return [shlex.split(line.split("-m autograder ", 1)[1]) for line in lines if "-m autograder " in line]


def test_every_readme_command_parses_to_its_own_function():
    commands = readme_cli_commands()
    assert {c[0] for c in commands} >= {"grade", "grade-all", "export-gradebook", "gradescope"}
    for argv in commands:
        args = cli_module.parser().parse_args(argv)
        assert args.command == argv[0] and callable(args.run), argv
        assert args.run.__module__ == "autograder.cli" and args.run.__name__ != "main", argv


def test_each_command_has_one_function_and_the_options_keep_their_defaults():
    [subparsers] = [a for a in cli_module.parser()._actions if isinstance(a, argparse._SubParsersAction)]
    runs = {name: command.get_default("run") for name, command in subparsers.choices.items()}
    assert set(runs) == {"grade", "diff", "grade-all", "export-gradebook", "gradescope", "gradescope-run",
                         "release", "nbgrader-course"}
    assert all(callable(run) for run in runs.values()) and len(set(runs.values())) == len(runs)
    args = cli_module.parser().parse_args(["grade-all", "submitted", "--jobs", "2", "--test-timeout", "5", "--quiet"])
    assert (args.out.name, args.jobs, args.test_timeout, args.quiet, args.scheduler) == ("grading-results", 2, 5.0, True, None)
    assert cli_module.parser().parse_args(["gradescope"]).out.name == "gradescope.zip"


def test_main_dispatches_and_returns_the_command_status(tmp_path, capsys):
    assert cli_module.main(["grade", str(tmp_path / "missing.ipynb")]) == 2
    assert "is not a file" in capsys.readouterr().err
    assert cli_module.main(["grade-all", str(tmp_path / "missing")]) == 2
    with pytest.raises(SystemExit):
        cli_module.main(["no-such-command"])
