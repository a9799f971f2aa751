"""Each buggy submission loses exactly the points of the exercise it breaks and is diagnosed."""

import importlib
import pkgutil

import pytest

import mutants
from autograder.sandbox import grade_submission
from conftest import edited_solution

CATALOGUE = [m for info in pkgutil.iter_modules(mutants.__path__)
             for m in importlib.import_module(f"mutants.{info.name}").MUTANTS]


def test_catalogue_names_distinct_misconceptions():
    from autograder.misconceptions import MISCONCEPTIONS
    names = [m.misconception for m in CATALOGUE]
    assert len(names) == len(set(names))
    assert set(names) <= set(MISCONCEPTIONS)


# Each test grades its own mutant, so that pytest-xdist (`make test`) spreads them over the cores.
@pytest.mark.parametrize("mutant", CATALOGUE, ids=lambda m: f"{m.chapter}:{m.misconception}")
def test_mutant_loses_its_exercise_points_and_is_diagnosed(tmp_path, mutant):
    result = grade_submission(edited_solution(tmp_path, mutant.chapter, mutant.replacements), chapter=mutant.chapter)
    assert result.status == "ok", result.detail
    lost = {e.id: e.max_points - e.points for e in result.exercises if e.points < e.max_points}
    assert lost == mutant.loses
    named = {c.misconception for e in result.exercises for c in e.checks if c.outcome == "failed"}
    assert mutant.misconception in named, f"diagnosed {named or 'nothing'}"
