"""The catalogue of buggy submissions, one module per chapter.

Each mutant is the reference notebook with one realistic bug edited in (each replacement
must match exactly once, so a mutant can never silently become the reference). It is named
by the misconception it commits, and says which exercise loses how many points and which
misconception the graders must name.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Mutant:
    misconception: str  # the id the graders must name
    chapter: str
    replacements: tuple[tuple[str, str], ...]  # (old, new) in the reference's code cells
    loses: dict  # exercise id -> points lost; every other exercise keeps full marks
