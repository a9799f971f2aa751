"""The registry of chapters and exercises, read from the chapter folders (``autograder/chapters``).

Each chapter is a folder ``chNN_name`` whose ``exercises.py`` lists, as plain data, its
exercises: id, graded name, points, and what a composite uses. An exercise's id is
``exNN_<graded name in snake_case>``; it is the ``grade_id`` of the solution cell that
defines the name, and ``<id>_tests`` is the grade_id of its hidden nbgrader test cell.
The points are the sum of the points of its grader tests (tests/test_exercises.py checks that).
"""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path

from autograder.paths import CHAPTER_FOLDERS


@dataclass(frozen=True)
class Chapter:
    id: str  # "01_self_attention": also the notebook's file stem and the nbgrader assignment
    title: str

    @property
    def notebook(self) -> str:
        return f"{self.id}.ipynb"

    @property
    def package(self) -> str:
        """Its folder in autograder/chapters, as a package: "ch" first, as a module name cannot start with a digit."""
        return f"autograder.chapters.ch{self.id}"

    @property
    def folder(self) -> Path:
        return CHAPTER_FOLDERS / f"ch{self.id}"

    @property
    def grader_module(self) -> str:
        return f"{self.package}.graders"


@dataclass(frozen=True)
class Exercise:
    id: str
    chapter: str
    name: str  # the graded name the learner defines
    points: int
    # Graded names (of this chapter or an earlier one) that this exercise calls: while it is
    # graded, their reference versions are bound in the learner's namespace, so one bug
    # costs points once, on its own exercise.
    uses: tuple[str, ...] = ()

    @property
    def test_cell_id(self) -> str:
        return f"{self.id}_tests"


def grader_path(chapter: str) -> Path:
    """The chapter's grader tests: a pytest module, run with the learner's names as fixtures."""
    return CHAPTERS[chapter].folder / "graders.py"


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


CHAPTERS: dict[str, Chapter] = {}
EXERCISES: dict[str, Exercise] = {}


def exercises_of(chapter: str) -> list[Exercise]:
    return [e for e in EXERCISES.values() if e.chapter == chapter]


def exercise_defining(name: str) -> Exercise | None:
    """The exercise whose graded name is ``name`` (graded names are unique across the course)."""
    return next((e for e in EXERCISES.values() if e.name == name), None)


def _register(folder: str) -> None:
    """Register the chapter in ``autograder/chapters/<folder>``: its id is the folder name after "ch"."""
    data = importlib.import_module(f"autograder.chapters.{folder}.exercises")
    chapter_id = folder.removeprefix("ch")
    CHAPTERS[chapter_id] = Chapter(chapter_id, data.TITLE)
    for exercise_id, name, points, *uses in data.EXERCISES:
        EXERCISES[exercise_id] = Exercise(exercise_id, chapter_id, name, points, tuple(uses[0]) if uses else ())


for _folder in sorted(p.name for p in CHAPTER_FOLDERS.glob("ch[0-9][0-9]_*") if p.is_dir()):
    _register(_folder)
