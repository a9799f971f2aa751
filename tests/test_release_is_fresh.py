"""course/ is generated from solutions/ by nbgrader: a stale or hand-edited release fails here."""

import json

import pytest

from autograder.exercises import CHAPTERS
from autograder.release import LOADER_MODULE, loader_copy, release_course
from conftest import COURSE

# Its tests share a module-scoped fixture: conftest.ONE_WORKER_MODULES keeps them on one worker.


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    target = tmp_path_factory.mktemp("course")
    release_course(target)
    return target


def cells(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [(c["cell_type"], "".join(c["source"]), c.get("metadata", {}).get("nbgrader")) for c in notebook["cells"]]


@pytest.mark.slow
@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_course_notebook_matches_a_fresh_release(fresh, chapter):
    name = f"{chapter}.ipynb"
    assert (COURSE / name).exists(), f"course/{name} is missing: run `make release`"
    assert cells(COURSE / name) == cells(fresh / name), f"course/{name} is stale: run `make release`"


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_release_has_no_solutions_hidden_tests_or_exercise_outputs(chapter):
    notebook = json.loads((COURSE / f"{chapter}.ipynb").read_text(encoding="utf-8"))
    text = json.dumps(notebook)
    assert "BEGIN SOLUTION" not in text and "BEGIN HIDDEN TESTS" not in text and "grade_exercise" not in text
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None


def test_course_loader_is_the_autograder_loader():
    assert (COURSE / LOADER_MODULE).read_text(encoding="utf-8") == loader_copy(), \
        "course/notebook_loader.py is stale: run `make release`"
