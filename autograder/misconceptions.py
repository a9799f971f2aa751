"""The registry of known misconceptions, read from each chapter folder's ``misconceptions.py``:
id, the wrong idea in one sentence, where it is taught.

A hint states the wrong idea, never the missing line. ``section`` is the text of the
heading of the notebook section that teaches the right idea (tests/test_exercises.py checks
that the heading exists). The implementations that reproduce each
misconception, so that graders can recognise it, are in the chapter's ``variants.py``; this
module stays free of torch so that the grading parent process never imports it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from autograder.exercises import CHAPTERS, Chapter


@dataclass(frozen=True)
class Misconception:
    id: str
    chapter: str
    hint: str
    section: str


MISCONCEPTIONS: dict[str, Misconception] = {}


def _register(chapter: Chapter) -> None:
    data = importlib.import_module(f"{chapter.package}.misconceptions")
    for misconception_id, hint, section in data.MISCONCEPTIONS:
        if misconception_id in MISCONCEPTIONS:
            raise ValueError(f"misconception {misconception_id} is registered twice")
        MISCONCEPTIONS[misconception_id] = Misconception(misconception_id, chapter.id, hint, section)


for _chapter in CHAPTERS.values():
    _register(_chapter)
