"""The exercise table, the graders, the catalogue and the notebooks agree with each other."""

import json

import pytest

from autograder.exercises import CHAPTERS, EXERCISES, exercise_defining, exercises_of, snake_case
from autograder.scoring import plan
from autograder.misconceptions import MISCONCEPTIONS
from conftest import SOLUTIONS


def notebook_cells(chapter):
    return json.loads((SOLUTIONS / f"{chapter}.ipynb").read_text(encoding="utf-8"))["cells"]


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_points_of_each_exercise_are_the_sum_of_its_grader_tests(chapter):
    checks = plan(chapter)
    for exercise in exercises_of(chapter):
        assert sum(p for _, e, p in checks if e == exercise.id) == exercise.points, exercise.id
    assert {e for _, e, _ in checks} == {e.id for e in exercises_of(chapter)}


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_each_exercise_has_one_solution_cell_and_one_test_cell_with_its_points(chapter):
    cells = {c["metadata"]["nbgrader"]["grade_id"]: c for c in notebook_cells(chapter)}
    for exercise in exercises_of(chapter):
        assert snake_case(exercise.name) in exercise.id and exercise.id.startswith(f"ex{chapter[:2]}_")
        solution, test = cells[exercise.id], cells[exercise.test_cell_id]
        assert solution["metadata"]["nbgrader"]["solution"] and not solution["metadata"]["nbgrader"]["grade"]
        assert test["metadata"]["nbgrader"]["grade"] and test["metadata"]["nbgrader"]["points"] == exercise.points
        assert f'grade_exercise("{exercise.id}", globals())' in "".join(test["source"])
    solution_ids = {g for g, c in cells.items() if c["metadata"]["nbgrader"].get("solution")}
    assert solution_ids == {e.id for e in exercises_of(chapter)}


def test_used_names_are_graded_names():
    for exercise in EXERCISES.values():
        for name in exercise.uses:
            assert exercise_defining(name) is not None, f"{exercise.id} uses {name}, which no exercise grades"


def test_every_misconception_points_at_a_heading_of_its_chapter():
    for misconception in MISCONCEPTIONS.values():
        headings = {line.lstrip("#").strip() for c in notebook_cells(misconception.chapter)
                    if c["cell_type"] == "markdown" for line in "".join(c["source"]).splitlines()
                    if line.startswith("#")}
        assert misconception.section in headings, f"{misconception.id}: no heading {misconception.section!r}"
