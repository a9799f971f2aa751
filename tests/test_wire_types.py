"""Values keep their type between the judge and the contestant.

A value the graders only pass back (a state) must reach the learner's code again as an equal
one of the same type: NamedTuples, tuple, list and dict subclasses, dataclasses, torch's named
results, and nested containers of tensors. Changes the learner's code makes in place to what
the judge sent come back to the judge.
"""

import pytest
import torch

from conftest import code_cell, contestant_process, write_notebook

# Its tests share a module-scoped fixture: conftest.ONE_WORKER_MODULES keeps them on one worker.

KINDS = '''
import collections
import dataclasses
from typing import NamedTuple

import torch


class State(NamedTuple):
    running_max: torch.Tensor
    count: int


class Bag(dict):
    pass


class Items(list):
    pass


class Pair(tuple):
    pass


@dataclasses.dataclass
class Record:
    values: torch.Tensor
    history: list


MADE = []


def make(kind):
    x = torch.arange(3.0)
    value = {
        "namedtuple": lambda: State(x, 3),
        "tuple_subclass": lambda: Pair((x, x + 1)),
        "list_subclass": lambda: Items([x, 2]),
        "dict_subclass": lambda: Bag(total=x),
        "ordered_dict": lambda: collections.OrderedDict(weight=x),
        "dataclass": lambda: Record(x, [x, 1]),
        "named_result": lambda: torch.cummax(x, dim=0),
        "nested": lambda: [State(x, 1), {"layer": (x, Record(x, [State(x, 2)]))}, Items([Pair((x,))])],
    }[kind]()
    MADE.append(value)
    return value


def layout(value):
    """Types all the way down, and tensors' values."""
    if isinstance(value, torch.Tensor):
        return ("tensor", value.tolist())
    if dataclasses.is_dataclass(value):
        return (type(value).__name__, [layout(getattr(value, f.name)) for f in dataclasses.fields(value)])
    if isinstance(value, dict):
        return (type(value).__name__, [(k, layout(v)) for k, v in value.items()])
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, [layout(v) for v in value])
    return (type(value).__name__, value)


def came_back(value):
    """Whether value is the object made last, or an equal one of the same types."""
    return value is MADE[-1] or layout(value) == layout(MADE[-1])


def bump_max(state):
    """A state changed in place, as a buggy step would."""
    state.running_max.add_(1)


def bump(record):
    record.values.add_(1)
    record.history.append(0)
'''
KIND_NAMES = ["namedtuple", "tuple_subclass", "list_subclass", "dict_subclass", "ordered_dict", "dataclass",
              "named_result", "nested"]


@pytest.fixture(scope="module")
def learner(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wire")
    contestant, loaded, names = contestant_process(write_notebook(folder / "kinds.ipynb", [code_cell(KINDS)]),
                                                   folder / "stderr.txt")
    assert loaded["problems"] == []
    yield names
    contestant.kill()


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_value_passed_back_reaches_the_learner_as_its_own_type(learner, kind):
    value = learner["make"](kind)
    assert learner["came_back"](value)
    assert learner["came_back"]([value][0])  # and through the judge's own containers


def test_the_judge_reads_a_namedtuple_like_a_tuple_and_by_field(learner):
    state = learner["make"]("namedtuple")
    assert isinstance(state, tuple) and len(state) == 2 and state[1] == 3
    assert torch.equal(state[0], torch.arange(3.0)) and torch.equal(state.running_max, state[0])
    assert type(state).__name__ == "State"


def test_the_judge_reads_a_dataclass_as_a_dict_of_its_fields(learner):
    record = learner["make"]("dataclass")
    assert isinstance(record, dict) and list(record) == ["values", "history"]
    assert torch.equal(record["values"], torch.arange(3.0)) and record.history[1] == 1


def test_a_container_the_judge_changed_goes_back_with_its_changes_and_type(learner):
    bag = learner["make"]("dict_subclass")
    bag["extra"] = torch.ones(1)
    assert learner["layout"](bag) == ("Bag", [("total", ("tensor", [0.0, 1.0, 2.0])), ("extra", ("tensor", [1.0]))])


def test_changes_in_place_to_a_state_of_the_learners_type_come_back(learner):
    state = learner["make"]("namedtuple")
    learner["bump_max"](state)
    assert torch.equal(state[0], torch.arange(3.0) + 1)
    record = learner["make"]("dataclass")
    learner["bump"](record)
    assert torch.equal(record["values"], torch.arange(3.0) + 1) and record["history"][-1] == 0
