"""The sandbox's protocol (signed records, the tasks given to each process) and the wire encoding
between the judge and the contestant, exercised on both ends without starting a process."""

import io
import os
import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import pytest
import torch

from autograder.sandbox import protocol, wire
from autograder.sandbox.contestant import Server
from autograder.sandbox.judge import Contestant, Remote


class State(NamedTuple):
    running_max: torch.Tensor
    count: int


@pytest.fixture
def ends():
    """The judge's end (no process started) and the contestant's end of one connection."""
    judge = Contestant(Path("unused.ipynb"), 1.0, 1 << 30, Path(os.devnull), {})
    contestant = Server(None, SimpleNamespace(names={}), None, None)
    return judge, contestant


def reply(ends, value):
    """``value`` as the judge reads it after the contestant sent it as plain data."""
    judge, contestant = ends
    return judge.decode(wire.load(wire.save(contestant.encode(value))))


def request(ends, value):
    """``value`` as the contestant reads it after the judge sent it."""
    judge, contestant = ends
    return contestant.decode(pickle.loads(pickle.dumps(judge.encode(value))))


def test_signed_records_round_trip_and_forged_lines_are_dropped(tmp_path):
    key, path = protocol.new_key(), tmp_path / "outcomes.jsonl"
    written = [protocol.contestant_record(123), protocol.loaded_record([], ["f"]),
               protocol.outcome_record({"test": "t", "outcome": "passed"}), protocol.done_record(0)]
    forged = protocol.signed_line(protocol.new_key(), protocol.outcome_record({"test": "t", "outcome": "passed"}))
    tampered = protocol.signed_line(key, protocol.load_timeout_record()).replace("load_timeout", "done")
    path.write_text("".join(protocol.signed_line(key, r) for r in written) + forged + tampered + "no tab\n")
    records, dropped = protocol.read_records(path, key)
    assert records == written and dropped == 3
    assert protocol.of_type(records, protocol.DONE) == [{"type": "done", "restarts": 0}]


def test_the_key_crosses_as_one_line():
    key, stream = protocol.new_key(), io.BytesIO()
    protocol.send_key(stream, key)  # the parent writes bytes to the judge's stdin, which reads text
    stream.seek(0)
    assert protocol.receive_key(io.TextIOWrapper(stream)) == key


def test_tasks_round_trip_through_their_arguments():
    judge = protocol.JudgeTask("02_multi_head_attention", ("01_self_attention", "02_multi_head_attention"),
                               "/w/n.ipynb", "/r/o.jsonl", 2.5, 3.0, 1 << 30, True)
    assert protocol.JudgeTask.from_argv(judge.argv()) == judge
    contestant = protocol.ContestantTask(7, "/w/n.ipynb", 60.0, ())
    assert protocol.ContestantTask.from_argv(contestant.argv()) == contestant


@pytest.mark.parametrize("value", [None, True, 3, 2.5, "text", b"bytes", torch.Size([2, 3]), torch.float64,
                                   torch.device("cpu"), (1, [2, {"a": (3.0,)}]), {"k": [None, "v"]}])
def test_plain_values_cross_both_ways_with_their_types(ends, value):
    for crossed in (reply(ends, value), request(ends, value)):
        assert crossed == value and type(crossed) is type(value)


def test_tensors_cross_as_copies_and_a_gradient_link_survives(ends):
    x = torch.arange(4.0).requires_grad_()
    back = reply(ends, x * 2)
    assert torch.equal(back, torch.arange(4.0) * 2) and back.requires_grad
    judge, contestant = ends
    assert judge.links[id(back)][0] in contestant.links  # the judge can send a gradient back
    sent = request(ends, x)
    assert torch.equal(sent, x) and sent.requires_grad and sent is not x


def test_what_the_judge_sent_comes_back_as_itself(ends):
    judge, contestant = ends
    items, weights = [1, 2], torch.ones(2)
    assert reply(ends, request(ends, items)) is items
    assert reply(ends, request(ends, weights)) is weights


def test_changes_in_place_come_back_as_updates(ends):
    judge, contestant = ends
    items = [1]
    sent = contestant.decode(judge.encode(items))
    sent.append(torch.zeros(1))
    judge._apply(contestant.updates())
    assert items[0] == 1 and torch.equal(items[1], torch.zeros(1))


def test_other_objects_stay_in_the_contestant_as_handles(ends):
    layer = torch.nn.Linear(2, 2)
    assert isinstance(reply(ends, layer), Remote)
    assert isinstance(reply(ends, layer.weight), Remote)  # parameters too
    assert isinstance(reply(ends, layer), torch.nn.Linear)  # a stand-in class answers isinstance


def test_a_container_of_the_learners_type_reads_as_its_items_and_names_its_type(ends):
    state = reply(ends, State(torch.zeros(1), 3))
    assert isinstance(state, tuple) and state[1] == 3 and type(state).__name__ == "State"


@pytest.mark.parametrize("node", [("?", 1), ("L",), (), object(), ("D", "not_a_dtype"), ("X", "not a tensor", -1)])
def test_the_judge_rejects_a_reply_that_is_not_the_encoding(ends, node):
    judge, _ = ends
    with pytest.raises((ValueError, TypeError)):
        judge.decode(node)


def test_nesting_is_bounded_both_ways(ends):
    judge, contestant = ends
    deep = "leaf"
    for _ in range(wire.MAX_DEPTH + 2):
        deep = (deep,)
    with pytest.raises(ValueError):
        contestant.encode(deep)
    node = "leaf"
    for _ in range(wire.MAX_DEPTH + 2):
        node = (wire.TUPLE, [node])
    with pytest.raises(ValueError):
        judge.decode(node)
