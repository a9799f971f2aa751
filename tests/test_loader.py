"""The loader: definitions without demos, and broken notebooks loaded as far as they go."""

import pytest

from autograder import load_notebook
from autograder.exercises import CHAPTERS, exercises_of
from conftest import SOLUTIONS, code_cell


def test_keeps_definitions_and_skips_demos(make_notebook, tmp_path):
    marker = tmp_path / "demo-ran"
    path = make_notebook(
        code_cell("import math\nfrom math import sqrt as root\nLIMIT = 3\nname = 'inert'\n"),
        code_cell(f"def f(x):\n    return root(x) * LIMIT\n\nopen({str(marker)!r}, 'w').write('x')\n"
                  "trained = f(4)\nprint('demo')"),
        code_cell("class C:\n    size = LIMIT\n"),
    )
    nb = load_notebook(path)
    assert nb.problems == []
    assert nb.f(4) == 6.0 and nb.C.size == 3 and nb.name == "inert" and "math" in nb
    assert "trained" not in nb  # a computed value is a demo, not a definition
    assert not marker.exists()  # and top-level calls never run


def test_syntax_error_keeps_the_statements_around_it(make_notebook):
    path = make_notebook(
        code_cell("def before():\n    return 1\n\ndef broken(:\n    pass\n\ndef after():\n    return 2\n",
                  grade_id="ex_cell"),
        code_cell("def elsewhere():\n    return 3\n"),
    )
    nb = load_notebook(path)
    assert nb.before() == 1 and nb.after() == 2 and nb.elsewhere() == 3
    [problem] = nb.problems
    assert (problem.kind, problem.cell, problem.grade_id, problem.line) == ("syntax_error", 0, "ex_cell", 4)
    assert "broken" not in nb


def test_a_statement_that_raises_is_reported_and_the_rest_loads(make_notebook):
    path = make_notebook(
        code_cell("import no_such_module_anywhere\n\ndef still_here():\n    return 'ok'\n", grade_id="ex_a"),
        code_cell("class Bad:\n    value = 1 / 0\n", grade_id="ex_b"),
    )
    nb = load_notebook(path)
    assert nb.still_here() == "ok"
    kinds = [(p.kind, p.grade_id, p.message.split(":")[0]) for p in nb.problems]
    assert kinds == [("exception", "ex_a", "ModuleNotFoundError"), ("exception", "ex_b", "ZeroDivisionError")]
    with pytest.raises(AttributeError, match="does not define 'Bad'.*ZeroDivisionError"):
        nb.Bad


def test_system_exit_in_a_cell_is_a_problem_not_an_exit(make_notebook):
    nb = load_notebook(make_notebook(code_cell("import sys\nclass A:\n    sys.exit(3)\n\nX = 1\n")))
    assert nb.X == 1 and nb.problems[0].message.startswith("SystemExit")


def test_magics_and_shell_escapes_are_skipped(make_notebook):
    nb = load_notebook(make_notebook(code_cell("%matplotlib inline\n!ls\ndef g():\n    return 5\n")))
    assert nb.problems == [] and nb.g() == 5


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]", '{"cells": 3}'])
def test_a_file_that_is_not_a_notebook_loads_empty_with_a_problem(tmp_path, content):
    path = tmp_path / "broken.ipynb"
    path.write_text(content)
    nb = load_notebook(path)
    assert nb.defined_in == {} and [p.kind for p in nb.problems] == ["not_a_notebook"]


def test_a_missing_file_is_a_problem(tmp_path):
    assert load_notebook(tmp_path / "absent.ipynb").problems[0].kind == "not_a_notebook"


@pytest.mark.parametrize("chapter", list(CHAPTERS))
def test_reference_notebooks_load_cleanly_with_every_graded_name(chapter):
    nb = load_notebook(SOLUTIONS / f"{chapter}.ipynb")
    assert nb.problems == []
    for exercise in exercises_of(chapter):
        cell, grade_id = nb.defined_in[exercise.name]
        assert grade_id == exercise.id, f"{exercise.name} must be defined in the cell {exercise.id}"


def solution_cell(source: str, grade_id: str) -> object:
    return code_cell(source, grade_id=grade_id, solution=True, grade=False, locked=False)


def test_what_a_solution_needs_loads_transitively_whatever_its_value(make_notebook):
    path = make_notebook(
        code_cell("import math\nBIG = float('inf')\n"),
        code_cell("NEG_INF = -BIG\nif math.pi > 3:\n    SIGN = -1\nelse:\n    SIGN = 1\n"),
        code_cell("def table(n):\n    return [SIGN * i for i in range(n)]\n\nSQUARES = table(4)\n"),
        solution_cell("def lowest(values):\n    return min(values + SQUARES, default=NEG_INF)\n", "ex_lowest"),
    )
    nb = load_notebook(path)
    assert nb.problems == []
    assert nb.lowest([]) == -3 and nb.NEG_INF == float("-inf")


def test_functions_made_by_assignment_load(make_notebook):
    path = make_notebook(
        code_cell("from functools import partial\n\ndef power(x, n):\n    return x ** n\n"),
        code_cell("square = partial(power, n=2)\ncube = lambda x: power(x, 3)\n"),
    )
    nb = load_notebook(path)
    assert nb.square(3) == 9 and nb.cube(2) == 8


def test_names_the_caller_keeps_load_however_they_are_assigned(make_notebook):
    path = make_notebook(code_cell("def make():\n    return lambda n: n + 1\n\nsuccessor = make()\nother = make()\n"))
    nb = load_notebook(path, keep={"successor"})
    assert nb.successor(1) == 2 and "other" not in nb


def test_demo_data_that_only_demo_helpers_read_stays_unloaded(make_notebook, tmp_path):
    marker = tmp_path / "trained"
    path = make_notebook(
        solution_cell("def model(x):\n    return 2 * x\n", "ex_model"),
        code_cell(f"def train():\n    open({str(marker)!r}, 'w').write('x')\n    return [1.0]\n\nlosses = train()\n"),
        code_cell("def plot():\n    return losses\n"),
    )
    nb = load_notebook(path)
    assert nb.model(2) == 4 and "losses" not in nb and not marker.exists()


def test_a_needed_name_bound_by_a_loop_says_where_and_why(make_notebook):
    path = make_notebook(
        code_cell("for SCALE in [1, 2]:\n    pass\n"),
        solution_cell("def scaled(x):\n    return x * SCALE\n", "ex_scaled"),
    )
    nb = load_notebook(path)
    with pytest.raises(NameError):
        nb.scaled(1)
    why = nb.why_not_loaded("SCALE")
    assert "cell 0" in why and "line 1" in why and "loop" in why
    assert nb.why_not_loaded("scaled") is None


def test_a_name_error_in_the_contestant_says_where_the_name_was_skipped(make_notebook, start_contestant):
    path = make_notebook(
        code_cell("for SCALE in [1, 2]:\n    pass\n"),
        solution_cell("def scaled(x):\n    return x * SCALE\n", "ex_scaled"),
    )
    _, names = start_contestant(path)
    with pytest.raises(NameError, match=r"name 'SCALE' is not defined \('SCALE' is not loaded: cell 0, line 1 "
                                        r"assigns it, but it is bound by a loop"):
        names["scaled"](1)


def test_a_reference_loads_its_earlier_chapters_in_a_kernel_that_imported_the_release_loader(tmp_path, monkeypatch):
    """nbgrader runs the hidden cells in the learner's kernel, whose `notebook_loader` is the copy in
    course/; the reference's own imports of earlier chapters must still resolve beside it."""
    import importlib.util
    import sys

    from autograder.loader import load_notebook as package_load
    from conftest import COURSE
    spec = importlib.util.spec_from_file_location("notebook_loader", COURSE / "notebook_loader.py")
    release_copy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(release_copy)
    monkeypatch.setitem(sys.modules, "notebook_loader", release_copy)
    monkeypatch.chdir(tmp_path)  # the learner's folder, without the earlier chapters
    assert package_load(SOLUTIONS / "03_add_and_norm.ipynb").problems == []
    assert sys.modules["notebook_loader"] is release_copy
