"""Grading in three processes: the parent, the judge and the contestant.

    parent.py      in the instructor's process: starts the judge under limits, reads its
                   signed records, scores (``grade_submission``)
    judge.py       runs the graders against handles on the learner's objects; starts the contestant
    contestant.py  the only process that runs the submission's code
    protocol.py    what crosses between them: the tasks, the key, the signed records
    wire.py        how values cross between the judge and the contestant (imports torch)
    limits.py      what confines them: resource limits, privileges dropped
    zygote.py      fork servers: judges and contestants forked from processes that imported torch

Imports go one way, down: parent -> zygote, protocol, limits; judge -> zygote, protocol, wire,
limits; contestant -> protocol, wire. A process starts the next by module name.
"""

from autograder.sandbox.parent import (DEFAULT_LOAD_TIMEOUT, DEFAULT_MEMORY, DEFAULT_TEST_TIMEOUT, DEFAULT_TIMEOUT,
                                       GRADERS_CHANGED, earlier_chapters, grade_submission)

__all__ = ["DEFAULT_LOAD_TIMEOUT", "DEFAULT_MEMORY", "DEFAULT_TEST_TIMEOUT", "DEFAULT_TIMEOUT", "GRADERS_CHANGED",
           "earlier_chapters", "grade_submission"]
