"""The views of a GradeResult: each names a failed check's misconception once (hint and section),
the HTML page escapes what the learner wrote and never shows a trace, and the JSON form reads back."""

import json

import pytest
from markupsafe import escape

from autograder import views
from autograder.exercises import CHAPTERS, exercises_of
from autograder.misconceptions import MISCONCEPTIONS
from autograder.probes import CheckFailed
from autograder.results import CheckResult, ExerciseResult, GradeResult

TRACE = "Traceback (most recent call last): SECRET_TRACE_LINE in the judge"


def result_with(misconception: str | None, message: str = "output: differs on random inputs",
                chapter: str | None = None) -> GradeResult:
    """A result of the misconception's chapter in which one check failed with that misconception."""
    chapter = chapter or (MISCONCEPTIONS[misconception].chapter if misconception else "01_self_attention")
    exercises = []
    for i, exercise in enumerate(exercises_of(chapter)):
        checks = [CheckResult("test_passes", "passed", 1, 1)]
        if i == 0:
            checks.append(CheckResult("test_output", "failed", 0, 3, message, misconception, TRACE))
        exercises.append(ExerciseResult(exercise.id, exercise.name, sum(c.points for c in checks),
                                        sum(c.max_points for c in checks), checks))
    return GradeResult("work.ipynb", chapter, "ok", exercises=exercises)


def gradescope_output(result: GradeResult) -> str:
    return "\n".join(t["output"] for t in views.gradescope_results([result])["tests"])


VIEWS = {
    "table": views.table,
    "feedback_html": lambda result: views.feedback_html(result, "alice"),
    "gradescope": gradescope_output,
    "nbgrader": lambda result: "\n".join(views.nbgrader_report(e) for e in result.exercises),
}


def as_shown(view: str, text: str) -> str:
    """How a piece of text appears in that view: escaped in the HTML page, as is elsewhere."""
    return str(escape(text)) if view == "feedback_html" else text


@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("misconception", MISCONCEPTIONS)
def test_each_view_names_the_misconception_with_its_hint_and_section_once(view, misconception):
    m = MISCONCEPTIONS[misconception]
    shown = VIEWS[view](result_with(misconception))
    plain = VIEWS[view](result_with(None, chapter=m.chapter))  # the chapter title may repeat a section
    for text in [m.hint, m.section, f"misconception {m.id}"]:
        text = as_shown(view, text)
        assert shown.count(text) - plain.count(text) == 1, (text, shown)
    assert shown.count("output: differs on random inputs") == 1


@pytest.mark.parametrize("view", VIEWS)
def test_no_view_shows_a_trace_and_a_passed_check_is_not_listed(view):
    shown = VIEWS[view](result_with("no_scaling"))
    assert "SECRET_TRACE_LINE" not in shown and "Traceback" not in shown
    assert "passes" not in shown


def test_a_check_failure_keeps_its_message_and_its_misconception_apart():
    failure = CheckFailed("output: differs", "no_scaling")
    assert str(failure) == "output: differs" and failure.misconception == "no_scaling"
    assert MISCONCEPTIONS["no_scaling"].hint not in str(failure)
    with pytest.raises(KeyError, match="not_a_misconception"):
        CheckFailed("output: differs", "not_a_misconception")


def test_the_table_shows_the_reason_then_the_misconception():
    lines = views.table(result_with("no_scaling")).splitlines()
    at = lines.index("      - test_output (-3): output: differs on random inputs")
    assert lines[at + 1] == "        " + views.misconception_note("no_scaling")
    assert lines[-1].split() == ["total", "4/7"]


def test_the_feedback_page_escapes_what_the_learner_wrote():
    result = result_with("no_scaling", message="got <script>alert('message')</script> & more")
    result.problems.append("cell ex01: NameError: name '<img src=x onerror=alert(1)>' is not defined")
    result.status, result.detail = "crashed", "<b>exit code 3</b>"
    page = views.feedback_html(result, student="<script>alert('student')</script>")
    assert "<script>" not in page and "<img" not in page and "<b>exit" not in page
    assert "&lt;script&gt;alert(&#39;student&#39;)&lt;/script&gt;" in page
    assert "&lt;script&gt;alert(&#39;message&#39;)&lt;/script&gt; &amp; more" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and "&lt;b&gt;exit code 3&lt;/b&gt;" in page
    assert page.startswith("<!doctype html>") and page.count("<li>") == 2  # one lost check, one problem


def test_the_feedback_page_has_the_points_and_the_chapter_title():
    page = views.feedback_html(result_with("no_scaling"), "alice")
    assert "<h1>Self-attention</h1>" in page and "alice: <strong>4 / 7</strong> points." in page
    assert "<td class=\"lost\">1 / 4</td>" in page
    assert "unknown chapter" in views.feedback_html(GradeResult("x.ipynb", None, "invalid", "not a notebook"))


def test_the_json_form_reads_back_as_the_same_result():
    result = result_with("no_scaling")
    result.problems.append("a problem")
    result.warnings.append("a warning")
    assert GradeResult.from_dict(json.loads(views.as_json(result))) == result
    record = {"student": "alice", "submission": "x.ipynb", "submission_sha256": "0", "graders_sha256": "1",
              **result.to_dict(include_traces=False)}
    back = GradeResult.from_dict(record)
    assert back.total == result.total and back.exercises[0].checks[1].trace == ""
    assert back.exercises[0].checks[1].misconception == "no_scaling"
    bare = GradeResult.from_dict({"exercises": [{"id": "ex", "name": "f", "points": 0, "max_points": 1, "checks": []}]})
    assert (bare.notebook, bare.chapter, bare.status, bare.max_total) == ("", None, "?", 1)


def test_gradescope_results_score_each_exercise():
    data = views.gradescope_results([result_with("no_scaling")])
    assert data["score"] == 4 and len(data["tests"]) == len(exercises_of("01_self_attention"))
    first = data["tests"][0]
    assert (first["number"], first["score"], first["max_score"]) == ("ex01_scaled_dot_product_attention", 1, 4)
    assert first["output"].startswith("-3 test_output: output: differs on random inputs\n   Likely misconception")
    assert data["tests"][1]["output"] == "all checks passed"
    assert views.gradescope_results([])["output"] == "no notebook (.ipynb) found in the submission"


def test_the_gradescope_bundle_carries_the_templates():
    from autograder.gradescope import package_files
    names = {p.name for p in package_files()}
    assert {"feedback.html.j2", "views.py", "cli.py"} <= names
    assert not any(p.suffix == ".pyc" for p in package_files())


def test_every_chapter_has_a_title_for_its_page():
    for chapter in CHAPTERS:
        assert f"<h1>{escape(CHAPTERS[chapter].title)}</h1>" in views.feedback_html(result_with(None, chapter=chapter))
