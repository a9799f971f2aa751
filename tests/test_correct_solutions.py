"""Correct solutions in other styles than the reference's get full marks, and the CLI and the
learner's kernel (where nbgrader runs the hidden cells) give them the same score."""

import ast
import importlib
import pkgutil

import nbformat
import pytest
from nbclient import NotebookClient

import correct
from autograder.exercises import exercises_of
from autograder.sandbox import grade_submission
from conftest import SOLUTIONS

CATALOGUE = [c for info in pkgutil.iter_modules(correct.__path__)
             for c in importlib.import_module(f"correct.{info.name}").CORRECT]
IDS = [f"{c.chapter}:{c.style}" for c in CATALOGUE]


def test_catalogue_covers_every_chapter_and_styles_are_distinct():
    assert {c.chapter for c in CATALOGUE} == {p.stem for p in SOLUTIONS.glob("*.ipynb")}
    assert len(set(IDS)) == len(IDS)


# Each test grades its own submission, so that pytest-xdist (`make test`) spreads them over the cores.
@pytest.mark.parametrize("variant", CATALOGUE, ids=IDS)
def test_a_correct_solution_in_another_style_gets_full_marks(tmp_path, variant):
    """Each correct submission, whole, graded through the CLI."""
    result = grade_submission(variant.write(SOLUTIONS / f"{variant.chapter}.ipynb", tmp_path), chapter=variant.chapter)
    assert result.status == "ok", result.detail
    lost = {e.id: [f"{c.test}: {c.message}" for c in e.checks if c.outcome != "passed"]
            for e in result.exercises if e.points < e.max_points}
    assert lost == {}
    assert result.problems == [] or all("02_multi_head_attention" in p or "03_add_and_norm" in p
                                        for p in result.problems), result.problems


def _graded_cells_only(path):
    """The submission as a learner who deleted the demos would hand it in: the setup cell, the
    learner's own cells, cells of definitions only, the solutions and the hidden test cells."""
    notebook = nbformat.read(str(path), as_version=4)

    def kept(cell):
        if cell.cell_type != "code":
            return False
        meta = cell.metadata.get("nbgrader", {})
        if not meta or meta.get("grade_id") == "setup" or meta.get("solution") or meta.get("grade"):
            return True
        try:
            body = ast.parse(cell.source).body
        except SyntaxError:
            return False
        return all(isinstance(n, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)) for n in body)
    notebook.cells = [c for c in notebook.cells if kept(c)]
    nbformat.write(notebook, str(path))
    return path


def _kernel_scores(path, chapter):
    """Run the notebook in one kernel, as nbgrader autograde does, and read each hidden cell's score."""
    notebook = nbformat.read(str(path), as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    scores = {}
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
        if cell.cell_type == "code" and grade_id.endswith("_tests"):
            values = [o for o in cell.outputs if o.output_type == "execute_result"]
            errors = [o for o in cell.outputs if o.output_type == "error" or o.get("name") == "stderr"]
            scores[grade_id.removesuffix("_tests")] = 0.0 if errors or not values else \
                float(values[-1]["data"]["text/plain"])
    return scores


@pytest.mark.slow
@pytest.mark.parametrize("variant", CATALOGUE, ids=IDS)
def test_the_cli_and_the_learners_kernel_agree(tmp_path, variant):
    """Each correct submission, without its demos (alone in its folder, as nbgrader autogrades it),
    graded by the CLI and in a kernel."""
    path = _graded_cells_only(variant.write(SOLUTIONS / f"{variant.chapter}.ipynb", tmp_path))
    cli = {e.id: e.points for e in grade_submission(path, chapter=variant.chapter).exercises}
    kernel = _kernel_scores(path, variant.chapter)
    full = {e.id: float(e.points) for e in exercises_of(variant.chapter)}
    assert kernel == cli
    assert cli == full
