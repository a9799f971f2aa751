"""nbgrader end to end: generate the assignment, autograde two students into the gradebook
(SQLite), generate feedback. The hidden cells call the same graders as the CLI."""

import shutil
import subprocess
import sys

import pytest

from autograder.release import make_nbgrader_course, tool_env
from conftest import SOLUTIONS, edited_solution

CHAPTER = "01_self_attention"
NO_SCALING = ("scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])", "scores = q @ k.transpose(-2, -1)")


def nbgrader(root, *args):
    done = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=root, capture_output=True, text=True, env=tool_env())
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_generate_autograde_and_feedback_for_two_students(tmp_path):
    root = make_nbgrader_course(tmp_path / "course", link=False)
    nbgrader(root, "generate_assignment", CHAPTER)
    released = root / "release" / CHAPTER / f"{CHAPTER}.ipynb"
    assert "BEGIN SOLUTION" not in released.read_text() and "grade_exercise" not in released.read_text()

    for student, notebook in [("alice", SOLUTIONS / f"{CHAPTER}.ipynb"),
                              ("bob", edited_solution(tmp_path, CHAPTER, [NO_SCALING]))]:
        folder = root / "submitted" / student / CHAPTER
        folder.mkdir(parents=True)
        shutil.copyfile(notebook, folder / f"{CHAPTER}.ipynb")
    nbgrader(root, "autograde", CHAPTER)

    from nbgrader.api import Gradebook
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gradebook:
        scores = {s: gradebook.find_submission(CHAPTER, s).score for s in ["alice", "bob"]}
        bob = gradebook.find_submission_notebook(CHAPTER, CHAPTER, "bob")
        lost = {g.name: g.score for g in bob.grades if g.score < g.max_score}
    assert scores == {"alice": 10.0, "bob": 7.0}
    assert lost == {"ex01_scaled_dot_product_attention_tests": 1.0}

    nbgrader(root, "generate_feedback", CHAPTER)
    feedback = (root / "feedback" / "bob" / CHAPTER / f"{CHAPTER}.html").read_text()
    assert "no_scaling" in feedback  # the reason travels with the lost points
    assert "def test_" not in feedback  # the graders' source does not
