"""What crosses between the sandbox's processes, defined once for both ends.

- parent -> judge: the task (``JudgeTask``, as arguments) and the key (a line on its stdin).
- judge -> parent: records, one JSON line each, signed with an HMAC under that key, so that a
  line the submission writes into the results file is dropped and counted.
- judge -> contestant: the task (``ContestantTask``), then requests and replies in the wire
  encoding (``wire``, which imports torch; this module does not, so that the parent need not).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import secrets
from pathlib import Path

# ---- records: judge -> parent ---------------------------------------------------------------
CONTESTANT, LOADED, OUTCOME, LOAD_TIMEOUT, DONE = "contestant", "loaded", "outcome", "load_timeout", "done"


def contestant_record(pgid: int) -> dict:
    """A contestant started in process group ``pgid``: the parent kills that group at the end."""
    return {"type": CONTESTANT, "pgid": pgid}


def loaded_record(problems: list[str], names: list[str]) -> dict:
    """What the notebook's loading defined, and what went wrong."""
    return {"type": LOADED, "problems": problems, "names": names}


def outcome_record(outcome: dict) -> dict:
    """One grader test's outcome (``GradingPlugin``'s record)."""
    return {"type": OUTCOME, **outcome}


def load_timeout_record() -> dict:
    return {"type": LOAD_TIMEOUT}


def done_record(restarts: int) -> dict:
    """Every grader ran; the contestant was started again ``restarts`` times."""
    return {"type": DONE, "restarts": restarts}


def of_type(records: list[dict], kind: str) -> list[dict]:
    return [r for r in records if r.get("type") == kind]


# ---- the key and signatures ---------------------------------------------------------------------
def new_key() -> bytes:
    return secrets.token_bytes(32)


def send_key(stream, key: bytes) -> None:
    stream.write(key.hex().encode() + b"\n")


def receive_key(stream) -> bytes:
    return bytes.fromhex(stream.readline().strip())


def sign(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def signed_line(key: bytes, record: dict) -> str:
    payload = json.dumps(record, default=str)
    return f"{payload}\t{sign(key, payload)}\n"


def read_records(path: Path, key: bytes) -> tuple[list[dict], int]:
    """The authenticated records of a results file, and how many lines were not."""
    records, forged = [], 0
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return records, forged
    for line in lines:
        payload, _, signature = line.rpartition("\t")
        if not hmac.compare_digest(sign(key, payload), signature):
            forged += 1
            continue
        record = json.loads(payload)
        if isinstance(record, dict):
            records.append(record)
    return records, forged


# ---- how each process is started ---------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class JudgeTask:
    """What the parent asks the judge to grade, and under which limits."""

    chapter: str
    references: tuple[str, ...]  # the chapters whose reference definitions the graders use
    notebook: str
    outcomes: str  # the results file
    test_timeout: float
    load_timeout: float
    memory: int
    drop_to_nobody: bool

    def argv(self) -> list[str]:
        return [self.chapter, ",".join(self.references), self.notebook, self.outcomes, str(self.test_timeout),
                str(self.load_timeout), str(self.memory), "1" if self.drop_to_nobody else "0"]

    @classmethod
    def from_argv(cls, argv: list[str]) -> JudgeTask:
        chapter, references, notebook, outcomes, test_timeout, load_timeout, memory, drop = argv
        return cls(chapter, tuple(filter(None, references.split(","))), notebook, outcomes, float(test_timeout),
                   float(load_timeout), int(memory), drop == "1")


@dataclasses.dataclass(frozen=True)
class ContestantTask:
    """What the judge asks the contestant to load: its end of the socket pair, the notebook, the
    time it may take, and the graded names (kept by the loader whatever their value)."""

    fd: int
    notebook: str
    load_timeout: float
    keep: tuple[str, ...]

    def argv(self) -> list[str]:
        return [str(self.fd), self.notebook, str(self.load_timeout), ",".join(self.keep)]

    @classmethod
    def from_argv(cls, argv: list[str]) -> ContestantTask:
        fd, notebook, load_timeout, keep = argv
        return cls(int(fd), notebook, float(load_timeout), tuple(filter(None, keep.split(","))))
