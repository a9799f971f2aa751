"""What nbgrader's hidden test cells call: the same graders as the CLI, run in the learner's kernel.

nbgrader scores a test cell zero when it writes to stderr, and otherwise takes the cell's
last value as partial credit. So ``grade_exercise`` captures everything the graders and the
learner's code print or warn while they run, prints ``views.nbgrader_report`` (the reasons
and misconceptions, never the tests' source) and returns the points, which the cell shows as
its value.
"""

from __future__ import annotations

import contextlib
import io
import warnings

from autograder.exercises import EXERCISES
from autograder.scoring import explain_missing, score
from autograder.pytest_plugin import run_graders
from autograder.views import nbgrader_report

TEST_TIMEOUT = 60.0


def grade_exercise(exercise_id: str, namespace: dict) -> float:
    exercise = EXERCISES[exercise_id]
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured), \
            warnings.catch_warnings(record=True):
        outcomes = run_graders(exercise.chapter, namespace, lambda name: explain_missing([], name),
                               only={exercise_id}, test_timeout=TEST_TIMEOUT)
    result = score("this notebook", exercise.chapter, outcomes, only={exercise_id}).exercises[0]
    print(nbgrader_report(result))
    return float(result.points)
