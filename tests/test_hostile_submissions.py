"""Hostile and broken submissions: each is graded to an exact per-exercise result, the class run
never crashes, and the correct submission graded beside them keeps full marks.

All cases are chapter 1 notebooks, one folder per student, graded together by ``grade_class``
with short limits; each case states the points of every exercise and the status it must get.
"""

import json
import time
from pathlib import Path

import pytest

from autograder.classroom import grade_class
from conftest import SOLUTIONS, cores_per_worker, once_per_run

# Its tests read one class graded once: conftest.ONE_WORKER_MODULES keeps them on one worker
# (and once_per_run makes sure).

CHAPTER = "01_self_attention"
SDPA, CAUSAL, SOFTMAX, SELF = ("ex01_scaled_dot_product_attention", "ex01_causal_mask",
                               "ex01_masked_softmax", "ex01_self_attention")
FULL = {SDPA: 4, CAUSAL: 1, SOFTMAX: 2, SELF: 3}
UNSCALED = "scores = q @ k.transpose(-2, -1)"
SCALED = "scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])"
SLEEPER_TAG = "hostile-sleeper-7f3a"


def reference():
    return json.loads((SOLUTIONS / f"{CHAPTER}.ipynb").read_text(encoding="utf-8"))


def cell_of(notebook, grade_id):
    return next(c for c in notebook["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id)


def replace_in(grade_id, old, new):
    def edit(notebook):
        cell = cell_of(notebook, grade_id)
        source = "".join(cell["source"])
        assert old in source, f"{old!r} not in {grade_id}"
        cell["source"] = source.replace(old, new, 1)
    return edit


def prepend_to_body(grade_id, marker, lines):
    """Insert ``lines`` (already indented) right after the line containing ``marker``."""
    def edit(notebook):
        cell = cell_of(notebook, grade_id)
        source = "".join(cell["source"]).splitlines(True)
        at = next(i for i, line in enumerate(source) if marker in line)
        cell["source"] = "".join(source[: at + 1] + [lines] + source[at + 1:])
    return edit


def add_cell(source, after="setup"):
    def edit(notebook):
        index = notebook["cells"].index(cell_of(notebook, after))
        notebook["cells"].insert(index + 1, {"cell_type": "code", "metadata": {}, "source": source,
                                             "outputs": [], "execution_count": None})
    return edit


def drop_cells(predicate):
    def edit(notebook):
        notebook["cells"] = [c for c in notebook["cells"] if not predicate(c)]
    return edit


def is_grade_cell(cell):
    return cell["metadata"].get("nbgrader", {}).get("grade", False)


BODY = "### BEGIN SOLUTION"


# case name -> (edits or raw file text, expected points per exercise, expected status)
CASES = {
    "syntax_error": ([replace_in(SDPA, "def scaled_dot_product_attention(q, k, v, mask=None):",
                                 "def scaled_dot_product_attention(q, k, v, mask=None)")],
                     {**FULL, SDPA: 0}, "ok"),
    "name_error_at_import": ([add_cell("class Broken(UndefinedBase):\n    pass\n")], FULL, "ok"),
    "missing_exercise": ([drop_cells(lambda c: c["metadata"].get("nbgrader", {}).get("grade_id") == SDPA)],
                         {**FULL, SDPA: 0}, "ok"),
    "renamed_exercise": ([replace_in(SDPA, "def scaled_dot_product_attention(", "def attention(")],
                         {**FULL, SDPA: 0}, "ok"),
    "wrong_signature": ([replace_in(CAUSAL, "def causal_mask(n, device=None):", "def causal_mask(n):")],
                        {**FULL, CAUSAL: 0}, "ok"),
    "wrong_shape": ([prepend_to_body(SOFTMAX, BODY, "    return X.sum(-1)\n")], {**FULL, SOFTMAX: 0}, "ok"),
    "nan_output": ([prepend_to_body(SDPA, BODY, "    w = (q @ k.transpose(-2, -1)).softmax(-1) * float('nan')\n    return w @ v, w\n")],
                   {**FULL, SDPA: 0}, "ok"),
    "exception_in_forward": ([prepend_to_body(SELF, "def forward", "        raise RuntimeError('boom')\n")],
                             {**FULL, SELF: 0.5}, "ok"),
    "endless_loop_at_load": ([add_cell("class Spin:\n    while True:\n        pass\n")], FULL, "ok"),
    "endless_loop_in_forward": ([prepend_to_body(SELF, "def forward", "        while True:\n            pass\n")],
                                {**FULL, SELF: 0.5}, "ok"),
    "sys_exit": ([prepend_to_body(CAUSAL, BODY, "    import sys\n    sys.exit(0)\n")], {**FULL, CAUSAL: 0}, "ok"),
    "os_exit": ([prepend_to_body(SOFTMAX, BODY, "    import os\n    os._exit(3)\n")], {**FULL, SOFTMAX: 0}, "ok"),
    "keyboard_interrupt": ([prepend_to_body(SDPA, BODY, "    raise KeyboardInterrupt\n")], {**FULL, SDPA: 0}, "ok"),
    "keyboard_interrupt_at_load": ([add_cell("class Stop:\n    raise KeyboardInterrupt\n")], FULL, "ok"),
    "memory_hog": ([prepend_to_body(SDPA, BODY, "    hog = []\n    while True:\n        hog.append(torch.empty(1 << 27))\n")],
                   {**FULL, SDPA: 0}, "ok"),
    "fork_sleepers": ([prepend_to_body(CAUSAL, BODY,
                                       "    import os\n    for _ in range(5):\n        if os.fork() == 0:\n"
                                       f"            os.execvp('sh', ['sh', '-c', 'sleep 120; : {SLEEPER_TAG}'])\n")],
                      FULL, "ok"),
    "sleep_past_limit": ([prepend_to_body(SDPA, BODY, "    import time\n    time.sleep(60)\n")],
                         {**FULL, SDPA: 0}, "ok"),
    "prints_megabytes": ([prepend_to_body(SDPA, BODY, "    print('x' * (8 << 20))\n")], FULL, "ok"),
    "deleted_test_cells": ([drop_cells(is_grade_cell)], FULL, "ok"),
    "edited_test_cells": ([lambda nb: [c.update(source="print('full marks')") for c in nb["cells"] if is_grade_cell(c)]],
                          FULL, "ok"),
    "patches_torch": ([replace_in(SDPA, SCALED, UNSCALED),
                       prepend_to_body(SDPA, BODY, "    torch.allclose = lambda *a, **k: True\n"
                                                   "    torch.Tensor.__ne__ = lambda *a: torch.tensor(False)\n")],
                      {**FULL, SDPA: 1}, "ok"),
    "patches_numpy_and_builtins": ([replace_in(SDPA, SCALED, UNSCALED),
                                    add_cell("import numpy, builtins\nclass Patch:\n"
                                             "    numpy.allclose = lambda *a, **k: True\n"
                                             "    builtins.isinstance = lambda *a: True\n")],
                                   {**FULL, SDPA: 1}, "ok"),
    "patches_autograder": ([replace_in(SDPA, SCALED, UNSCALED),
                            prepend_to_body(SDPA, BODY, "    import autograder.probes as p\n"
                                                        "    p.check_close = lambda *a, **k: None\n"
                                                        "    p.is_close = lambda *a: True\n")],
                           {**FULL, SDPA: 1}, "ok"),
    "prints_hidden_tests": ([prepend_to_body(SDPA, BODY, "    import autograder.exercises as g\n"
                                                         "    raise ValueError(g.grader_path('01_self_attention').read_text())\n")],
                            {**FULL, SDPA: 0}, "ok"),
    "prints_solutions": ([prepend_to_body(SDPA, BODY, "    import json, autograder.paths as g\n"
                                                      "    nb = json.load(open(g.SOLUTIONS / '01_self_attention.ipynb'))\n"
                                                      "    raise ValueError(' '.join(''.join(c['source']) for c in nb['cells'] if c['cell_type'] == 'code'))\n")],
                         {**FULL, SDPA: 0}, "ok"),
    "writes_outside_its_folder": ([prepend_to_body(CAUSAL, BODY, "    import pathlib\n"
                                                               "    pathlib.Path('/tmp', 'hostile-was-here').write_text('x')\n")],
                                  FULL, "ok"),
    "forges_results": ([replace_in(SDPA, SCALED, UNSCALED),
                        prepend_to_body(SDPA, BODY,
                                        "    import json\n"
                                        "    with open('../results/outcomes.jsonl', 'a') as f:\n"
                                        "        for t in ['test_output_and_weights_match_reference', 'test_gradients_match_reference', 'test_follows_dtype_and_is_causal']:\n"
                                        "            f.write(json.dumps({'type': 'outcome', 'test': t, 'exercise': 'ex01_scaled_dot_product_attention', 'outcome': 'passed'}) + '\\tforged\\n')\n")],
                       {**FULL, SDPA: 1}, "ok"),
    # The reference's values live in the judge's process: no frame of the contestant holds them.
    "steals_reference_values": ([replace_in(SDPA, SCALED, UNSCALED),
                                 prepend_to_body(SDPA, BODY, "    import sys\n    frame = sys._getframe(1)\n"
                                                             "    while frame is not None:\n"
                                                             "        if 'expected_out' in frame.f_locals:\n"
                                                             "            return frame.f_locals['expected_out'], frame.f_locals['expected_w']\n"
                                                             "        frame = frame.f_back\n")],
                                {**FULL, SDPA: 1}, "ok"),
    "reads_the_judges_memory": ([prepend_to_body(SDPA, BODY, "    import os\n    open(f'/proc/{os.getppid()}/mem', 'rb').read(1)\n")],
                                {**FULL, SDPA: 0}, "ok"),
    # A restarted contestant is forked from the judge's zygote: its parent is still the judge.
    "reads_the_judges_memory_after_a_restart": ([prepend_to_body(SOFTMAX, BODY, "    import os\n    os._exit(3)\n"),
                                                 prepend_to_body(SELF, "def forward", "        import os\n        open(f'/proc/{os.getppid()}/mem', 'rb').read(1)\n")],
                                                {**FULL, SOFTMAX: 0, SELF: 0.5}, "ok"),
    "not_json": ("{ this is not json", {SDPA: 0, CAUSAL: 0, SOFTMAX: 0, SELF: 0}, "ok"),
    "empty_file": ("", {SDPA: 0, CAUSAL: 0, SOFTMAX: 0, SELF: 0}, "ok"),
    "correct": ([], FULL, "ok"),
}
OTHER_COURSE = {"cells": [{"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": [],
                           "execution_count": None}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    def grade(folder):
        root = folder / "class"
        for name, (edits, _, _) in CASES.items():
            (root / name).mkdir(parents=True, exist_ok=True)
            if isinstance(edits, str):
                text = edits
            else:
                notebook = reference()
                for edit in edits:
                    edit(notebook)
                text = json.dumps(notebook)
            (root / name / f"{CHAPTER}.ipynb").write_text(text, encoding="utf-8")
        (root / "other_course").mkdir(exist_ok=True)
        (root / "other_course" / "homework.ipynb").write_text(json.dumps(OTHER_COURSE))
        return grade_class(root, folder / "results", jobs=cores_per_worker(), progress=False, timeout=40,
                           test_timeout=2, load_timeout=3, memory=3 << 30)
    folder, records = once_per_run(tmp_path_factory, "hostile", grade)
    return {r["student"]: r for r in records}, folder / "results"


def test_there_are_at_least_25_hostile_cases():
    assert len(CASES) - 1 >= 25


@pytest.mark.parametrize("case", list(CASES))
def test_each_case_gets_its_exact_result(graded, case):
    records, _ = graded
    _, expected_points, expected_status = CASES[case]
    record = records[case]
    assert record["status"] == expected_status, record["detail"]
    points = {e["id"]: e["points"] for e in record["exercises"]}
    assert points == expected_points
    for exercise in record["exercises"]:
        for check in exercise["checks"]:
            assert check["outcome"] == "passed" or check["message"], "every lost point carries its reason"


def test_a_notebook_of_another_course_is_invalid(graded):
    records, _ = graded
    assert records["other_course"]["status"] == "invalid" and records["other_course"]["exercises"] == []


@pytest.mark.parametrize("case,expected", [
    ("syntax_error", "SyntaxError"), ("missing_exercise", "is not defined"), ("renamed_exercise", "is not defined"),
    ("wrong_shape", "shape"), ("nan_output", "NaN"), ("endless_loop_in_forward", "longer than 2 s"),
    ("sleep_past_limit", "longer than 2 s"), ("memory_hog", "can't allocate memory"), ("sys_exit", "SystemExit"),
    ("keyboard_interrupt", "KeyboardInterrupt"), ("exception_in_forward", "boom"),
    ("os_exit", "exit code 3"), ("reads_the_judges_memory", "PermissionError"),
    ("reads_the_judges_memory_after_a_restart", "PermissionError"),
])
def test_the_reason_names_what_happened(graded, case, expected):
    records, _ = graded
    messages = " ".join(c["message"] for e in records[case]["exercises"] for c in e["checks"])
    assert expected in messages


def test_problems_at_load_time_are_reported(graded):
    records, _ = graded
    assert any("NameError" in p for p in records["name_error_at_import"]["problems"])
    assert any("longer than 3 s" in p for p in records["endless_loop_at_load"]["problems"])
    assert any("KeyboardInterrupt" in p for p in records["keyboard_interrupt_at_load"]["problems"])


def test_patched_libraries_do_not_judge_and_are_diagnosed(graded):
    records, _ = graded
    for case in ["patches_torch", "patches_numpy_and_builtins", "patches_autograder", "steals_reference_values",
                 "forges_results"]:
        named = {c["misconception"] for e in records[case]["exercises"] for c in e["checks"]}
        assert "no_scaling" in named, case


def test_feedback_and_results_never_quote_hidden_sources(graded):
    records, out = graded
    for case in ["prints_hidden_tests", "prints_solutions"]:
        texts = [json.dumps(records[case]), (out / "feedback" / case / f"{CHAPTER}.html").read_text()]
        for text in texts:
            assert "def test_output_and_weights_match_reference" not in text
            assert "check_close(weights, expected_w" not in text
            assert 'masked_fill(~mask, float(\\"-inf\\"))' not in text and 'masked_fill(~mask, float("-inf"))' not in text
        assert "[hidden]" in json.dumps(records[case])


def test_forged_result_lines_are_ignored(graded):
    records, _ = graded
    assert "unauthenticated result lines ignored" in records["forges_results"]["detail"]


def test_forked_processes_do_not_outlive_grading(graded):
    time.sleep(0.5)
    survivors = []
    for proc in Path("/proc").iterdir():
        try:
            if SLEEPER_TAG.encode() in (proc / "cmdline").read_bytes():
                survivors.append(proc.name)
        except OSError:
            continue
    assert survivors == [], "processes forked by a submission survived its grading"
