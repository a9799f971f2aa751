"""The contestant: the only process that runs a submission's code.

The judge (``autograder.sandbox.judge``) starts it with one end of a socket pair: forked from the
judge's zygote (``zygote.Zygote``, a copy of the judge made before it held any secret), or, when
the submission has killed the zygote, as ``python -m autograder.sandbox.contestant``.
It loads the notebook's definitions, says what it loaded, then answers the judge's requests, one
at a time: look up a name, get or set an attribute, call something, iterate, run a backward
pass. It holds the learner's objects; the judge holds *handles* to them (``judge.Remote``).
Requests and replies are in the wire encoding (``wire``).

Each request carries the judge's grad mode and global RNG state and each reply the RNG
state after it, so ``torch.manual_seed`` in a grader seeds the learner's dropout as it
would in one process. Lists, dicts, tensors and generators the judge sends keep their
identity for the rest of the test, and whatever the learner's code does to them in place
comes back as an update the judge applies to its own object. A container of the learner's own
type that the judge sends back is rebuilt here as that type around the items the judge sent.
"""

from __future__ import annotations

import builtins
import copy
import io
import pickle
import signal
import sys
from multiprocessing.connection import Connection

import torch

from autograder.sandbox import wire
from autograder.sandbox.protocol import ContestantTask
from autograder.sandbox.wire import HANDLE, OWN, REFERENCE, SENT, TENSOR, Codec

# Base classes the judge may build a stand-in from, so that isinstance(handle, nn.Linear) works
# (and the reference's classes, named "reference:chapter:name").
TRUSTED_MODULES = ("builtins", "collections", "torch", "autograder")


class Interrupted(BaseException):
    """Raised in the learner's code when the judge's time limit for a check expires (SIGUSR1)."""


def _interrupt(signum, frame):
    raise Interrupted("stopped: the check's time limit expired")


class Sent:
    """An object the judge sent, and the version it had when it last came or went."""

    __slots__ = ("value", "version")

    def __init__(self, value, version):
        self.value, self.version = value, version


class Server(Codec):
    """Answers the judge's requests; its end of the wire encoding."""

    def __init__(self, connection: Connection, loaded, load_reference, snapshot: BuiltinsSnapshot):
        self.connection = connection
        self.builtins = snapshot
        self.loaded = loaded  # the notebook's LoadedNotebook: its names, and why others were skipped
        self.names = loaded.names
        self.load_reference = load_reference
        self.reference_of: dict[int, tuple] = {}  # id(reference definition) -> (chapter, name)
        self.reset()

    def reset(self):
        """Forget the objects of the test that ended: handles, sent objects, gradient links."""
        self.objects: dict[int, object] = {}      # handle -> object
        self.handle_of: dict[int, int] = {}       # id(object) -> handle
        self.sent: dict[int, Sent] = {}           # judge's id -> what it sent
        self.sent_id: dict[int, int] = {}         # id(our copy) -> judge's id
        self.links: dict[int, torch.Tensor] = {}  # link -> tensor whose gradient the judge may send
        self.touched: set[int] = set()

    # ---- requests ---------------------------------------------------------------------
    def serve(self):
        while True:
            try:
                request = self.connection.recv_bytes(wire.MAX_MESSAGE)
            except EOFError:
                return
            reply = self.answer(request)
            self.connection.send_bytes(reply)

    def answer(self, request: bytes) -> bytes:
        self.touched = set()
        reply = {}
        try:
            (grad_enabled, rng_state), operation, *arguments = _Unpickler(io.BytesIO(request), self).load()
            torch.set_rng_state(rng_state)
            with torch.set_grad_enabled(grad_enabled):
                value = getattr(self, "do_" + operation)(*arguments)
            reply["value"] = self.encode(value)
        except BaseException as error:  # the learner's code may raise anything, SystemExit included
            reply["error"] = _describe(error, self.loaded)
        self.builtins.restore()
        try:
            reply["updates"] = self.updates()
            reply["rng"] = torch.get_rng_state()
            return wire.save(reply)
        except BaseException as error:
            return wire.save({"error": _describe(error), "rng": torch.get_rng_state()})

    def do_reset(self):
        self.reset()

    def do_has(self, name):
        return name in self.names

    def do_get(self, name):
        return self.names[name]

    def do_set(self, name, value):
        self.names[name] = self.decode(value)

    def do_delete(self, name):
        self.names.pop(name, None)

    def do_getattr(self, target, name):
        return getattr(target, name)

    def do_setattr(self, target, name, value):
        setattr(target, name, self.decode(value))

    def do_delattr(self, target, name):
        delattr(target, name)

    def do_call(self, callee, args, kwargs):
        callee = self.decode(callee)
        return callee(*self.decode(args), **{k: self.decode(v) for k, v in kwargs.items()})

    def do_len(self, target):
        return len(target)

    def do_getitem(self, target, key):
        return target[self.decode(key)]

    def do_setitem(self, target, key, value):
        target[self.decode(key)] = self.decode(value)

    def do_contains(self, target, value):
        return self.decode(value) in target

    def do_iter(self, target):
        return list(target)

    def do_bool(self, target):
        return bool(target)

    def do_repr(self, target):
        return repr(target)[:2000]

    def do_str(self, target):
        return str(target)[:2000]

    def do_backward(self, gradients):
        """Backward from our tensors behind the judge's copies; then the sent leaves' gradients."""
        tensors = [self.links[link] for link, _ in gradients]
        torch.autograd.backward(tensors, [gradient for _, gradient in gradients])
        return None

    def do_gradients(self):
        return [(judge_id, s.value.grad) for judge_id, s in self.sent.items()
                if isinstance(s.value, torch.Tensor) and s.value.is_leaf and s.value.grad is not None]

    # ---- what the judge sends ---------------------------------------------------------
    def decode_object(self, node):
        return node  # requests are pickles from the judge: its own objects, ours by persistent id

    def decode_sent(self, judge_id, kind, payload, depth):
        self.touched.add(judge_id)
        known = self.sent.get(judge_id)
        known = None if known is None else known.value
        if kind == "tensor":
            value = self._sent_tensor(payload, known)
        elif kind == "list":
            value = known if known is not None else []
            value[:] = self.decode_items(payload, depth)
        elif kind == "dict":
            items = self.decode_pairs(payload, depth)
            value = known if known is not None else {}
            value.clear()
            value.update(items)
        elif kind == "generator":
            value = known if known is not None else torch.Generator()
            value.set_state(payload)
        elif kind == "own":
            template, own_kind, items = payload
            value = _rebuild(template, own_kind, self.decode_own_items(own_kind, items, depth), known)
        else:
            raise ValueError(f"unknown kind {kind!r} from the judge")
        self.sent[judge_id] = Sent(value, _version(value))
        self.sent_id[id(value)] = judge_id
        return value

    def _sent_tensor(self, payload, known):
        if payload is None:  # unchanged since we last saw it
            return known
        if isinstance(payload, int):  # a copy of one of our tensors: use ours, its graph intact
            return self.links[payload]
        if known is not None:
            with torch.no_grad():
                known.copy_(payload["data"])
            return known
        value = payload["data"].clone().requires_grad_(payload["requires_grad"])
        if payload["parameter"]:
            value = torch.nn.Parameter(value, requires_grad=payload["requires_grad"])
        return value

    def updates(self):
        """What the learner's code changed in place in the objects this request sent."""
        changes = []
        for judge_id in sorted(self.touched):
            sent = self.sent[judge_id]
            value = sent.value
            if isinstance(value, torch.Tensor):
                if _version(value) != sent.version:
                    changes.append((judge_id, "tensor", value.detach().clone()))
            elif isinstance(value, list):
                changes.append((judge_id, "list", self.encode_items(value, 0)))
            elif isinstance(value, dict):
                changes.append((judge_id, "dict", self.encode_pairs(value.items(), 0)))
            elif isinstance(value, torch.Generator):
                changes.append((judge_id, "generator", value.get_state()))
            elif wire.is_dataclass_instance(value):
                changes.append((judge_id, "dict", self.encode_pairs(wire.own_items(value, "fields"), 0)))
            sent.version = _version(value)
        return changes

    # ---- what we send -------------------------------------------------------------------
    def encode_known(self, value):
        judge_id = self.sent_id.get(id(value))
        if judge_id is not None and self.sent[judge_id].value is value:
            return (SENT, judge_id)
        return None

    def encode_tensor(self, value):
        if isinstance(value, torch.nn.Parameter):
            return self.handle_for(value)  # modules and parameters stay here
        data = value.detach().as_subclass(torch.Tensor).clone()
        link = -1
        if value.requires_grad:
            link = len(self.links)
            self.links[link] = value
        return (TENSOR, data, link)

    def encode_other(self, value, depth):
        for plain in (bool, int, float, str):  # a subclass (IntEnum, numpy.float64) as its plain value
            if isinstance(value, plain):
                return plain(value)
        kind = wire.own_kind(value)
        if kind is None:
            return self.handle_for(value)
        handle = self.handle_for(value)
        return (OWN, kind, handle, self.encode_own_items(kind, wire.own_items(value, kind), depth))

    def handle_for(self, value):
        handle = self.handle_of.get(id(value))
        if handle is None or self.objects[handle] is not value:
            handle = len(self.objects)
            self.objects[handle] = value
            self.handle_of[id(value)] = handle
        kind = type(value)
        bases = []
        for base in kind.__mro__:
            if id(base) in self.reference_of:  # a reference class the judge sent: it has its own
                bases.append("reference:" + ":".join(self.reference_of[id(base)]))
            elif base.__module__.split(".")[0] in TRUSTED_MODULES:
                bases.append(f"{base.__module__}:{base.__qualname__}")
        return (HANDLE, handle, [kind.__name__, bases])


def _rebuild(template, kind, items, known):
    """A container of ``template``'s type holding ``items`` (``known``, the one built when the
    judge sent it before, when it can be reused). The learner's own object when its type cannot
    be rebuilt."""
    try:
        if kind == "tuple":
            if type(known) is type(template) and len(known) == len(items) and all(a is b for a, b in zip(known, items)):
                return known
            cls = type(template)
            value = cls._make(items) if hasattr(cls, "_make") else cls(items)
            if hasattr(template, "__dict__"):
                vars(value).update(vars(template))
            return value
        value = known if known is not None else copy.copy(template)
        if kind == "list":
            value[:] = items
        elif kind == "dict":
            value.clear()
            value.update(items)
        else:
            for name, item in items:
                object.__setattr__(value, name, item)  # frozen dataclasses too
        return value
    except Exception:
        return template


def _version(value):
    if isinstance(value, torch.Tensor):
        return value._version
    return None


class _Unpickler(pickle.Unpickler):
    """Requests name our objects by persistent ids: handles, and the reference's definitions."""

    def __init__(self, file, server: Server):
        super().__init__(file)
        self.server = server

    def persistent_load(self, pid):
        tag, *rest = pid
        if tag == HANDLE:
            return self.server.objects[rest[0]]
        if tag == REFERENCE:  # a reference definition: the learner's code may use it (Exercise.uses)
            chapter, name = rest
            definition = self.server.load_reference(chapter).names[name]
            self.server.reference_of[id(definition)] = (chapter, name)
            return definition
        raise pickle.UnpicklingError(f"unknown persistent id {tag!r}")


class BuiltinsSnapshot:
    """The builtins as they were before the submission's code ran. Put back before each reply:
    torch.save and this server rely on them, and a submission replacing builtins.isinstance should
    break its own code, not the answers about it."""

    def __init__(self):
        self.saved = dict(vars(builtins))

    def restore(self):
        current = vars(builtins)
        if current != self.saved:
            current.clear()
            current.update(self.saved)


def _describe(error: BaseException, loaded=None) -> tuple:
    """The error as plain data: its type's name, whether that is a builtin, its message. A
    NameError for a name the notebook assigns says where, and why the loader skipped it."""
    kind = type(error)
    message = _safe_str(error)
    if isinstance(error, NameError) and loaded is not None and isinstance(getattr(error, "name", None), str):
        why = loaded.why_not_loaded(error.name)
        if why:
            message += f" ({why})"
    return (kind.__name__[:100], kind.__module__ == "builtins", message[:4000])


def _safe_str(error) -> str:
    try:
        return str(error)
    except BaseException:
        return f"<{type(error).__name__} whose message cannot be shown>"


def main(task: ContestantTask) -> None:
    from autograder import loader
    from autograder.references import load_reference
    from autograder.probes import GraderTimeout, time_limit

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, _interrupt)
    sys.argv = ["autograder.sandbox.contestant", task.notebook]
    connection = Connection(task.fd)
    sys.modules["notebook_loader"] = loader  # what course/ notebooks import
    snapshot = BuiltinsSnapshot()
    try:
        with time_limit(task.load_timeout):
            loaded = loader.load_notebook(task.notebook, catch_interrupts=True, after_statement=snapshot.restore,
                                          keep=task.keep)
    except GraderTimeout:
        snapshot.restore()
        connection.send_bytes(wire.save({"load_timeout": True}))
        return
    names = {"problems": [str(p) for p in loaded.problems], "names": sorted(loaded.defined_in)}
    connection.send_bytes(wire.save(names))
    Server(connection, loaded, load_reference, snapshot).serve()


if __name__ == "__main__":
    main(ContestantTask.from_argv(sys.argv[1:]))
    sys.stdout.flush()
    import os
    os._exit(0)  # skip interpreter teardown: learner objects may misbehave in finalizers
