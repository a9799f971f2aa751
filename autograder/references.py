"""The reference notebooks, loaded once per process: what graders compare the learner's code with."""

from __future__ import annotations

import functools

from autograder.exercises import CHAPTERS, exercise_defining
from autograder.loader import LoadedNotebook, load_notebook
from autograder.paths import SOLUTIONS


@functools.cache
def load_reference(chapter: str) -> LoadedNotebook:
    reference = load_notebook(SOLUTIONS / CHAPTERS[chapter].notebook)
    if reference.problems:
        raise RuntimeError(f"the reference notebook of {chapter} does not load: {reference.problems}")
    return reference


def reference_definition(name: str):
    """The reference version of a graded name, from whichever chapter grades it."""
    return load_reference(exercise_defining(name).chapter).names[name]
