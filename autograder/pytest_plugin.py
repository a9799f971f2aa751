"""The pytest side of grading: the ``exercise`` marker, fixtures that hand a test the learner's
names, and a collector that turns pytest's reports into plain outcome records.

Graders are ordinary pytest tests::

    @pytest.mark.exercise("ex01_causal_mask", points=1)
    def test_true_on_and_below_the_diagonal(causal_mask): ...

The fixture ``causal_mask`` is the learner's definition. While an exercise is graded, the
reference versions of the smaller exercises it uses are bound in the learner's namespace
(see ``Exercise.uses``). A missing name fails the test with the loader's explanation.
"""

from __future__ import annotations

import os
import traceback
import types

import pytest

from autograder.exercises import EXERCISES, exercises_of, grader_path
from autograder.probes import CheckFailed, GraderTimeout, time_limit
from autograder.references import load_reference, reference_definition

MARKER = "exercise(id, points): the exercise a grader test belongs to and the points it is worth"


def run_graders(chapter: str, names: dict, explain=None, only=None, test_timeout=None, on_outcome=None):
    """Run the chapter's grader tests against ``names`` in this process; return outcome records."""
    plugin = GradingPlugin(chapter, names, load_reference(chapter), explain, only, test_timeout, on_outcome)
    args = [str(grader_path(chapter)), "-p", "no:terminal", "-p", "no:cacheprovider",
            "-c", os.devnull, "--rootdir", str(grader_path(chapter).parent), "-W", "default", "--strict-markers"]
    # Installed pytest plugins (nbval, anyio, ...) have nothing to do with grading: skip loading them.
    autoload = os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    try:
        code = pytest.main(args, plugins=[plugin])
    finally:
        if autoload is None:
            os.environ.pop("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
        else:
            os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = autoload
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED, pytest.ExitCode.NO_TESTS_COLLECTED):
        raise RuntimeError(f"the graders of {chapter} could not run (pytest exit code {code})")
    return plugin.outcomes


class GradingPlugin:
    """Gives grader tests the learner's names and collects their outcomes.

    ``learner`` is a mapping of the learner's names (a LoadedNotebook's ``names`` or a
    kernel's ``globals()``); ``reference`` the reference notebook's LoadedNotebook.
    """

    def __init__(self, chapter: str, learner: dict, reference, explain_missing=None,
                 only: set[str] | None = None, test_timeout: float | None = None, on_outcome=None):
        self.learner = learner
        self.reference_notebook = reference
        self.explain_missing = explain_missing or (lambda name: f"{name!r} is not defined")
        self.only = only
        self.test_timeout = test_timeout
        self.on_outcome = on_outcome  # called with each outcome as soon as it is known
        self.outcomes: list[dict] = []
        # pytest finds fixtures on a module's attributes (on an instance, only on its class).
        self.fixtures = types.ModuleType(f"learner_names_{chapter}")
        for exercise in exercises_of(chapter):
            setattr(self.fixtures, exercise.name, self._name_fixture(exercise.name))

    # ---- fixtures -------------------------------------------------------------------
    def _name_fixture(self, name):
        @pytest.fixture(name=name)
        def learner_name(request):
            exercise = EXERCISES[_exercise_marker(request.node).args[0]]
            if name not in self.learner:
                pytest.fail(self.explain_missing(name), pytrace=False)
            saved = {n: self.learner[n] for n in exercise.uses if n in self.learner}
            for used in exercise.uses:
                self.learner[used] = reference_definition(used)
            try:
                yield self.learner[name]
            finally:
                for used in exercise.uses:
                    if used in saved:
                        self.learner[used] = saved[used]
                    else:
                        self.learner.pop(used, None)
        return learner_name

    @pytest.fixture
    def reference(self):
        return self.reference_notebook

    # ---- hooks ----------------------------------------------------------------------
    def pytest_configure(self, config):
        config.addinivalue_line("markers", MARKER)
        config.pluginmanager.register(self.fixtures, "learner-names")

    def pytest_collection_modifyitems(self, items, config):
        if self.only is None:
            return
        keep = [i for i in items if _exercise_marker(i).args[0] in self.only]
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item):
        try:
            with time_limit(self.test_timeout):
                return (yield)
        except (KeyboardInterrupt, SystemExit) as error:  # raised by learner code: a failed check
            raise CheckFailed(f"your code raised {type(error).__name__}") from None

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_teardown(self, item, nextitem):
        try:
            return (yield)
        finally:
            reset = getattr(self.learner, "reset", None)  # a judge.RemoteNamespace forgets the test's objects
            if reset is not None:
                reset()

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        if report.failed or (report.when == "call"):
            marker = _exercise_marker(item)
            outcome = _outcome(item, marker, call, report)
            self.outcomes.append(outcome)
            if self.on_outcome:
                self.on_outcome(outcome)
        return report


def _exercise_marker(item):
    marker = item.get_closest_marker("exercise")
    if marker is None:
        raise pytest.UsageError(f"grader test {item.nodeid} has no exercise marker")
    return marker


def _outcome(item, marker, call, report) -> dict:
    error = call.excinfo.value if call.excinfo is not None else None
    return {
        "test": item.originalname or item.name,
        "nodeid": item.nodeid,
        "exercise": marker.args[0],
        "outcome": "passed" if report.passed else "failed",
        "phase": report.when,
        "message": _message(error, report) if report.failed else "",
        "misconception": getattr(error, "misconception", None),
        "trace": "".join(traceback.format_exception(error))[-4000:] if error is not None and report.failed else "",
    }


def _message(error, report) -> str:
    if error is None:
        return str(report.longrepr)[-500:]
    if isinstance(error, pytest.fail.Exception):
        return str(error)
    if report.when != "call":
        return f"the grader could not start ({type(error).__name__}: {error})"[:1000]
    if isinstance(error, AssertionError):
        return str(error).split("\nassert ")[0][:1000]
    if isinstance(error, GraderTimeout):
        return str(error)
    return f"{type(error).__name__} raised in your code: {error}"[:1000]
