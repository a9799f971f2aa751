"""The catalogue of correct submissions in other styles than the reference's, one module per chapter.

Each is the reference notebook with some solution cells rewritten as a learner might write
them (helper constants in cells of their own, lambdas, functools.partial, einsum, view or
reshape, states of the learner's own types...). Every one must get full marks, through the
CLI and in the learner's kernel alike. They sit beside the mutants (tests/mutants), which must
lose points.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Correct:
    style: str  # what is unusual about it
    chapter: str
    solutions: dict  # grade_id of a solution cell -> the learner's source for the whole cell
    helpers: tuple[str, ...] = field(default=())  # the learner's own cells, inserted before the first rewritten one

    def write(self, reference: Path, folder: Path) -> Path:
        """The submission: the reference notebook with these cells; returns its path in folder."""
        notebook = json.loads(reference.read_text(encoding="utf-8"))
        cells = notebook["cells"]
        grade_ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in cells]
        missing = set(self.solutions) - set(grade_ids)
        assert not missing, f"{self.style}: no cells {sorted(missing)} in {reference.name}"
        for cell, grade_id in zip(cells, grade_ids):
            if grade_id in self.solutions:
                assert cell["metadata"]["nbgrader"].get("solution"), f"{grade_id} is not a solution cell"
                cell["source"] = self.solutions[grade_id]
                cell["outputs"] = []
        first = min(grade_ids.index(g) for g in self.solutions)
        cells[first:first] = [{"cell_type": "code", "execution_count": None, "id": f"learner-helper-{i}",
                               "metadata": {}, "outputs": [], "source": source}
                              for i, source in enumerate(self.helpers)]
        path = folder / reference.name
        path.write_text(json.dumps(notebook), encoding="utf-8")
        return path
