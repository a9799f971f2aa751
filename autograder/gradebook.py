"""Write the CLI's results into an nbgrader gradebook, so that formgrader shows them.

The CLI's scores come from the sandboxed graders; nbgrader's own autograde runs the hidden
cells in the learner's kernel. Exporting makes the tamper-proof scores the ones formgrader
and ``nbgrader export`` see: each exercise's points become the auto score of its hidden
test cell (``<exercise id>_tests``). The assignment must have been generated in that course
(``nbgrader generate_assignment CHAPTER``) so that the gradebook knows its cells.
"""

from __future__ import annotations

from pathlib import Path

from autograder.exercises import CHAPTERS, EXERCISES


def export_to_gradebook(records: list[dict], course: Path) -> int:
    """Set the auto scores of every graded submission in ``course``'s gradebook; return how many."""
    from nbgrader.api import Gradebook, MissingEntry

    exported = 0
    with Gradebook(f"sqlite:///{Path(course).resolve() / 'gradebook.db'}") as gradebook:
        for record in records:
            chapter = record.get("chapter")
            if chapter not in CHAPTERS or record.get("status") == "invalid":
                continue
            student = record["student"]
            gradebook.update_or_create_student(student)
            try:
                gradebook.find_submission(chapter, student)
            except MissingEntry:
                gradebook.add_submission(chapter, student)
            for exercise in record["exercises"]:
                grade = gradebook.find_grade(EXERCISES[exercise["id"]].test_cell_id, chapter, chapter, student)
                grade.auto_score = exercise["points"]
            gradebook.db.commit()
            exported += 1
    return exported
