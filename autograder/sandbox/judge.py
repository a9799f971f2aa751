"""The judge: runs the hidden graders against a submission that lives in another process.

``sandbox.grade_submission`` starts ``python -m autograder.sandbox.judge``. The judge loads the
reference notebooks and the graders, starts the contestant (``sandbox.contestant``), the
only process that runs the submission's code, and runs the graders with the learner's
names bound to handles (``Remote``) on the contestant's objects. Reference values,
comparisons and the signed outcome records stay here: whatever the submission patches
(torch, builtins, the autograder) it patches in its own process, and it never sees the
key that signs the records.

A handle forwards what a grader does with it (attributes, calls, ``len``, indexing,
iteration) and answers ``isinstance`` with a stand-in class built from the torch classes the
object derives from. Tensors cross by value; those that require grad are linked to the
contestant's, so that a backward pass in the judge continues there (``sync_gradients``).
When the contestant dies or overruns a time limit it is killed and, for the next test,
started again.
"""

from __future__ import annotations

import builtins
import io
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection
from pathlib import Path

import torch

from autograder import probes
from autograder.probes import CheckFailed
from autograder.sandbox import protocol, wire, zygote
from autograder.sandbox.limits import confine_contestant, not_dumpable
from autograder.sandbox.protocol import ContestantTask, JudgeTask
from autograder.sandbox.wire import HANDLE, REFERENCE, SENT, Codec

MAX_RESTARTS = 8
INTERRUPT_GRACE = 1.0  # seconds the learner's code gets to stop when a time limit expires
EXIT_GRACE = 2.0  # seconds the contestant gets to load before the judge's own limit, on top of its own
# Learner exceptions raised in the judge as themselves: harmless types graders may catch by name.
BUILTIN_ERRORS = {"AttributeError", "TypeError", "ValueError", "RuntimeError", "IndexError", "KeyError",
                  "NotImplementedError", "ZeroDivisionError", "AssertionError", "NameError", "MemoryError",
                  "ArithmeticError", "OverflowError", "LookupError", "UnboundLocalError", "RecursionError"}


class ContestantDied(CheckFailed):
    """The submission's process ended or misbehaved during a request."""


class StaleHandle(ContestantDied):
    """A handle on an object of a contestant that has since been killed."""


class LoadTimeout(ContestantDied):
    """The contestant did not finish loading the notebook in time."""


class LearnerError(Exception):
    """An exception of the submission's own making (a subclass named after it is raised)."""


class Remote:
    """A handle on an object of the contestant; see the module docstring."""

    __slots__ = ("_contestant", "_handle", "_start")

    def __init__(self, contestant, handle):
        object.__setattr__(self, "_contestant", contestant)
        object.__setattr__(self, "_handle", handle)
        object.__setattr__(self, "_start", contestant.starts)  # which run of the contestant holds it

    def __getattr__(self, name):
        return self._contestant.request("getattr", self, name)

    def __setattr__(self, name, value):
        self._contestant.request("setattr", self, name, self._contestant.encode(value))

    def __delattr__(self, name):
        self._contestant.request("delattr", self, name)

    def __call__(self, *args, **kwargs):
        encode = self._contestant.encode
        return self._contestant.request("call", self, encode(args), {k: encode(v) for k, v in kwargs.items()})

    def __len__(self):
        return self._contestant.request("len", self)

    def __getitem__(self, key):
        return self._contestant.request("getitem", self, self._contestant.encode(key))

    def __setitem__(self, key, value):
        encode = self._contestant.encode
        self._contestant.request("setitem", self, encode(key), encode(value))

    def __contains__(self, value):
        return self._contestant.request("contains", self, self._contestant.encode(value))

    def __iter__(self):
        return iter(self._contestant.request("iter", self))

    def __bool__(self):
        return self._contestant.request("bool", self)

    def __repr__(self):
        return self._contestant.request("repr", self)

    def __str__(self):
        return self._contestant.request("str", self)


class Mirror:
    """The judge's copy of a container of the learner's own type (a NamedTuple, a dataclass, a
    dict or list subclass): a tuple, list or dict of its items, read here like any other. Sent
    back, it becomes a container of the learner's type again, holding the items the judge sends
    (its tensors by identity, so that in-place changes come back as for any sent tensor). A
    dataclass is a dict of its fields here. Attributes the mirror lacks (a NamedTuple's fields,
    a dataclass's fields unless a dict method has the name, the learner's methods) are read from
    the learner's object."""

    def _init_mirror(self, remote, kind):
        object.__setattr__(self, "_remote", remote)
        object.__setattr__(self, "_kind", kind)

    def _encode(self, contestant, depth):
        kind = object.__getattribute__(self, "_kind")
        items = contestant.encode_own_items(kind, self.items() if isinstance(self, dict) else self, depth)
        return contestant._sent(self, "own", (object.__getattribute__(self, "_remote"), kind, items))

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return getattr(object.__getattribute__(self, "_remote"), name)


class TupleMirror(Mirror, tuple):
    pass


class ListMirror(Mirror, list):
    pass


class DictMirror(Mirror, dict):
    pass


MIRRORS = {"tuple": TupleMirror, "list": ListMirror, "dict": DictMirror, "fields": DictMirror}


class RemoteNamespace:
    """The learner's names, as GradingPlugin reads and rebinds them, in the contestant."""

    def __init__(self, contestant):
        self.contestant = contestant

    def __contains__(self, name):
        return self.contestant.request("has", name)

    def __getitem__(self, name):
        return self.contestant.request("get", name)

    def __setitem__(self, name, value):
        try:
            self.contestant.request("set", name, self.contestant.encode(value))
        except StaleHandle:
            pass  # putting back a name after a restart: the new contestant has its own definition

    def pop(self, name, default=None):
        self.contestant.request("delete", name)
        return default

    def reset(self):
        """Called after each test: both sides forget that test's objects."""
        self.contestant.reset()


class Contestant(Codec):
    """The judge's side of the connection: starts, restarts and talks to the contestant; its end
    of the wire encoding."""

    def __init__(self, notebook: Path, load_timeout: float, memory: int, stderr: Path, references: dict,
                 drop_to_nobody: bool = False, on_start=None, keep: tuple[str, ...] = ()):
        self.notebook, self.load_timeout, self.memory, self.stderr = notebook, load_timeout, memory, stderr
        self.keep = keep  # the graded names: the loader keeps their assignments, whatever their value
        self.references = references  # id -> persistent id of each reference definition
        self.reference_definitions = {}  # persistent id -> definition
        self.drop_to_nobody = drop_to_nobody
        self.on_start = on_start or (lambda process: None)
        self.process = self.connection = self.zygote = None
        self.starts = 0
        self.broken = None  # why it cannot be started again
        self.standins: dict[tuple, type] = {}
        self._forget()

    def _forget(self):
        self.proxies: dict[int, Remote] = {}      # handle -> proxy, so that `is` works
        self.sent: dict[int, object] = {}          # our id -> the object we sent (kept alive)
        self.sent_ids: dict[int, int] = {}         # id(object) -> our id
        self.sent_versions: dict[int, int] = {}    # our id -> the tensor's version when it last crossed
        self.links: dict[int, tuple] = {}          # id(our copy) -> (link, copy, version on arrival)

    # ---- process -------------------------------------------------------------------------
    def start_zygote(self):
        """Contestants are forks of a copy of this process from now on, which has imported torch
        already: call it only before the judge holds anything the submission must not see (the
        key, the reference)."""
        self.zygote = zygote.Zygote(self._forked_main)

    def start(self):
        """Start the contestant loading the notebook; ``wait_loaded`` reads what it loaded."""
        self.starts += 1
        ours, theirs = socket.socketpair()
        self.process = self.zygote.fork(theirs) if self.zygote is not None else None
        if self.process is None and self.zygote is not None:  # the submission killed or stopped it
            self.zygote.close()
            self.zygote = None
            ours.close()
            theirs.close()
            ours, theirs = socket.socketpair()  # not the pair a late fork of the zygote may hold
        if self.process is None:
            self.process = self._spawn(theirs)
        theirs.close()
        self.connection = Connection(ours.detach())
        self.on_start(self.process)

    def _spawn(self, theirs: socket.socket) -> subprocess.Popen:
        task = ContestantTask(theirs.fileno(), str(self.notebook), self.load_timeout, self.keep)
        command = [sys.executable, "-P", "-m", "autograder.sandbox.contestant", *task.argv()]
        with open(self.stderr, "ab") as stderr:
            return subprocess.Popen(
                command, cwd=self.notebook.parent, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=stderr, pass_fds=(theirs.fileno(),), start_new_session=True,
                preexec_fn=lambda: confine_contestant(self.memory, self.drop_to_nobody))

    def _forked_main(self, fd: int):
        """In a contestant forked from the zygote: what ``_spawn``'s command and limits do."""
        from autograder.sandbox.contestant import main
        os.setsid()
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)
        os.dup2(os.open(self.stderr, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), 2)
        os.closerange(3, fd)
        os.closerange(fd + 1, 65536)
        os.chdir(self.notebook.parent)
        confine_contestant(self.memory, self.drop_to_nobody)
        main(ContestantTask(fd, str(self.notebook), self.load_timeout, self.keep))

    def wait_loaded(self) -> dict:
        """What the contestant loaded ({"problems", "names"}); raises ContestantDied if it did not."""
        if not self.connection.poll(self.load_timeout + EXIT_GRACE):
            self.kill()
            raise LoadTimeout("loading the notebook's definitions took too long")
        loaded = self._read()
        if not isinstance(loaded, dict) or "problems" not in loaded:
            self.kill()
            raise LoadTimeout("loading the notebook's definitions took too long (an endless loop at the top level?)")
        return loaded

    def ensure_running(self):
        if self.process is not None:
            return
        if self.broken is None and self.starts > MAX_RESTARTS:
            self.broken = f"not run: the submission's process was restarted {MAX_RESTARTS} times already"
        if self.broken is not None:
            raise ContestantDied(self.broken)
        self.start()
        try:
            self.wait_loaded()
        except ContestantDied as error:
            self.broken = f"the submission's process could not be started again: {error}"
            raise ContestantDied(self.broken) from None

    def kill(self, ended: bool = False):
        """End the contestant and everything it started; the exit status, if it had one."""
        process, self.process = self.process, None
        if self.connection is not None:
            self.connection.close()
            self.connection = None
        if process is None:
            return None
        code = process.poll()
        for _ in range(50 if ended else 0):  # it closed the connection: let it finish exiting
            if code is not None:
                break
            time.sleep(0.01)
            code = process.poll()
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        process.wait()
        self._forget()
        return code

    def reset(self):
        if self.process is not None:
            try:
                self.request("reset")
            except ContestantDied:
                pass  # it is gone, and its objects with it
        self._forget()

    # ---- requests ----------------------------------------------------------------------------
    def request(self, operation, *arguments):
        self.ensure_running()
        buffer = io.BytesIO()
        _Pickler(buffer, self).dump(((torch.is_grad_enabled(), torch.get_rng_state()), operation, *arguments))
        try:
            self.connection.send_bytes(buffer.getvalue())
            reply = self._read()
        except ContestantDied:
            raise
        except BaseException:  # a time limit expired while the learner's code ran
            self._interrupt()
            raise
        if not isinstance(reply, dict) or not isinstance(reply.get("rng"), torch.Tensor):
            self.kill()
            raise ContestantDied("the submission's process sent a malformed reply")
        try:
            torch.set_rng_state(reply["rng"])
            self._apply(reply.get("updates", []))
            raised = _learner_error(reply["error"]) if "error" in reply else None
            value = None if raised is not None else self.decode(reply.get("value"))
        except (TypeError, ValueError, KeyError, IndexError, AttributeError, RuntimeError) as error:
            self.kill()
            raise ContestantDied(f"the submission's process sent a malformed reply ({type(error).__name__}: "
                                 f"{str(error)[:200]})") from None
        if raised is not None:
            raise raised
        return value

    def _interrupt(self):
        """Stop the learner's code with an exception there (SIGUSR1); kill it if it does not stop."""
        if self.process is None:
            return
        try:
            os.kill(self.process.pid, signal.SIGUSR1)
            if self.connection.poll(INTERRUPT_GRACE):
                self._read()  # the interrupted request's answer: the check has failed already
                return
        except (ContestantDied, OSError):
            pass
        self.kill()

    def _read(self):
        try:
            data = self.connection.recv_bytes(wire.MAX_MESSAGE)
        except (EOFError, OSError):
            code = self.kill(ended=True)
            raise ContestantDied(_ended(code)) from None
        try:
            return wire.load(data)
        except Exception:
            self.kill()
            raise ContestantDied("the submission's process sent a reply that is not plain data") from None

    def sync_gradients(self):
        """Continue backward passes that reached our copies of the contestant's tensors there,
        then give the leaves we sent the gradients they got."""
        pending = []
        for link, copy, _ in self.links.values():
            if copy.grad is not None:
                pending.append((link, copy.grad.detach().clone()))
                copy.grad = None
        if not pending or self.process is None:
            return
        self.request("backward", pending)
        for judge_id, gradient in self.request("gradients"):
            tensor = self.sent[judge_id]
            if isinstance(tensor, torch.Tensor) and isinstance(gradient, torch.Tensor) and tensor.is_leaf:
                tensor.grad = gradient

    # ---- what we send ---------------------------------------------------------------------------
    # Lists, dicts, tensors and generators go by identity (SENT); anything else is pickled, handles
    # and reference definitions by persistent id.
    def encode_list(self, value, depth):
        return self._sent(value, "list", self.encode_items(value, depth))

    def encode_dict(self, value, depth):
        return self._sent(value, "dict", self.encode_pairs(value.items(), depth))

    def encode_tensor(self, value):
        return self._sent(value, "tensor", self._tensor_payload(value))

    def encode_other(self, value, depth):
        if isinstance(value, Mirror):
            return value._encode(self, depth)
        if type(value) is torch.Generator:
            return self._sent(value, "generator", value.get_state())
        return value

    def _sent(self, value, kind, payload):
        judge_id = self.sent_ids.get(id(value))
        if judge_id is None:
            judge_id = len(self.sent)
            self.sent[judge_id] = value
            self.sent_ids[id(value)] = judge_id
        if kind == "tensor":
            self.sent_versions[judge_id] = value._version
        return (SENT, judge_id, kind, payload)

    def _tensor_payload(self, tensor):
        judge_id = self.sent_ids.get(id(tensor))
        if judge_id is not None and self.sent_versions.get(judge_id) == tensor._version:
            return None  # the contestant's copy is current
        link = self.links.get(id(tensor))
        if judge_id is None and link is not None and link[1] is tensor and link[2] == tensor._version:
            return link[0]  # our copy of one of its tensors: it uses its own, with its graph
        return {"data": tensor.detach().clone(), "requires_grad": tensor.requires_grad,
                "parameter": isinstance(tensor, torch.nn.Parameter)}

    def _apply(self, updates):
        """Apply the contestant's in-place changes to what we sent."""
        for judge_id, kind, data in updates:
            target = self.sent[judge_id]
            if kind == "tensor" and isinstance(target, torch.Tensor) and isinstance(data, torch.Tensor):
                with torch.no_grad():
                    if target.shape == data.shape and target.dtype == data.dtype:
                        target.copy_(data)
                    else:
                        target.data = data
                self.sent_versions[judge_id] = target._version
            elif kind == "list" and isinstance(target, list):
                target[:] = self.decode_items(data, 1)
            elif kind == "dict" and isinstance(target, dict):
                items = self.decode_pairs(data, 1)
                target.clear()
                target.update(items)
            elif kind == "generator" and isinstance(target, torch.Generator):
                target.set_state(data)
            else:
                raise ValueError(f"an update of kind {kind!r} for a {type(target).__name__}")

    # ---- what we receive --------------------------------------------------------------------
    def decode_tensor(self, data, link, depth):
        if not isinstance(data, torch.Tensor):
            raise ValueError("not a tensor")
        if isinstance(link, int) and link >= 0 and (data.is_floating_point() or data.is_complex()):
            data.requires_grad_(True)
            self.links[id(data)] = (link, data, data._version)
        return data

    def decode_sent(self, judge_id, depth):
        return self.sent[judge_id]

    def decode_own(self, kind, handle, items, depth):
        remote = self.decode(handle, depth)
        if not isinstance(remote, Remote) or kind not in MIRRORS:
            raise ValueError("not a container of the learner's own type")
        mirror = self._mirror_type(MIRRORS[kind], remote)(self.decode_own_items(kind, items, depth))
        mirror._init_mirror(remote, kind)
        return mirror

    def decode_handle(self, handle, info, depth):
        name, bases = info
        proxy = self.proxies.get(handle)
        if proxy is None:
            proxy = self.proxies[handle] = self._proxy_type(str(name)[:100], tuple(map(str, bases)))(self, handle)
        return proxy

    def _mirror_type(self, base, remote):
        """A subclass of ``base`` named after the learner's class, for messages that name types."""
        name = type(remote).__name__
        key = (base, name)
        if key not in self.standins:
            self.standins[key] = type(name, (base,), {})
        return self.standins[key]

    def _proxy_type(self, name, bases):
        key = (name, bases)
        if key not in self.standins:
            definitions = {pid[1:]: self.reference_definitions[pid] for pid in self.reference_definitions}
            standin = _standin(name, bases, definitions)
            self.standins[key] = type(name, (Remote,), {"__slots__": (), "__class__": property(lambda self: standin),
                                                        "remote_bases": bases})
        return self.standins[key]


def _standin(name, bases, references):
    """A class for isinstance: a subclass of the first of ``bases`` we have imported ourselves
    (``references`` maps (chapter, name) to our reference definitions)."""
    for base in bases:
        module, _, qualname = base.partition(":")
        if module == "reference":
            found = references.get(tuple(qualname.split(":")))
        else:
            found = sys.modules.get(module)
            for part in qualname.split("."):
                found = getattr(found, part, None) if part.isidentifier() and found is not None else None
        if not isinstance(found, type) or found is object or issubclass(found, (torch._C.TensorBase, BaseException)):
            continue
        try:
            return type(name, (found,), {"__module__": "submission"})
        except TypeError:  # a final class (function, method): try the next base
            continue
    return type(name, (), {"__module__": "submission"})


def _learner_error(description) -> BaseException:
    """The submission's exception as one of ours: a harmless builtin as itself, else a
    LearnerError subclass of the same name (its SystemExit cannot end the judge)."""
    name, builtin, message = str(description[0]), description[1], str(description[2])
    if builtin is True and name in BUILTIN_ERRORS:
        return getattr(builtins, name)(message)
    return type(name if name.isidentifier() else "LearnerError", (LearnerError,), {})(message)


def _ended(code) -> str:
    if code is None:
        return "your code ended the grading process"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        return f"your code's process was killed by {name}"
    return f"your code ended the grading process (exit code {code})"


class _Pickler(pickle.Pickler):
    def __init__(self, file, contestant: Contestant):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.contestant = contestant

    def persistent_id(self, obj):
        if isinstance(obj, Remote):
            if object.__getattribute__(obj, "_contestant") is not self.contestant or \
                    object.__getattribute__(obj, "_start") != self.contestant.starts:
                raise StaleHandle("an object of the submission from before its process was restarted")
            return (HANDLE, object.__getattribute__(obj, "_handle"))
        return self.contestant.references.get(id(obj))


def reference_table(chapters) -> tuple[dict[int, tuple], dict[tuple, object]]:
    """id -> (REFERENCE, chapter, name) for the definitions of the chapters' reference notebooks, and
    the other way round."""
    from autograder.references import load_reference
    table, definitions = {}, {}
    for chapter in chapters:
        for name, value in load_reference(chapter).names.items():
            if isinstance(value, type) or callable(value) and hasattr(value, "__code__"):
                table.setdefault(id(value), (REFERENCE, chapter, name))
                definitions.setdefault((REFERENCE, chapter, name), value)
    return table, definitions


def preload():
    """Import what the judge and the contestant need before forking, so that each does not import
    it again: nothing here may load a reference or read a grader."""
    import pytest  # noqa: F401  (the judge's)
    import autograder.pytest_plugin  # noqa: F401
    import autograder.scoring  # noqa: F401
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401  (every notebook's)
    except ImportError:
        pass
    import autograder.sandbox.contestant  # noqa: F401
    import autograder.loader  # noqa: F401
    # torch imports it on first use (0.6 s) in every judge that has not: torch.testing.assert_close,
    # the graders' comparison, needs it.
    import torch.distributed.tensor  # noqa: F401


def preload_later():
    """What only some submissions need, which the fork server imports once its first judge has
    ended: a single ``grade`` does not wait for it, and every later judge and contestant has it."""
    import torch._dynamo  # noqa: F401  (0.6 s: some operations import it, true division on meta tensors, say)


class Records:
    """The signed records this judge writes for the parent (``protocol``)."""

    def __init__(self, path: str, key: bytes):
        self.file, self.key = open(path, "a", encoding="utf-8"), key

    def write(self, record: dict) -> None:
        self.file.write(protocol.signed_line(self.key, record))
        self.file.flush()


def main(task: JudgeTask):
    import importlib

    from autograder.exercises import CHAPTERS, exercises_of
    from autograder.pytest_plugin import run_graders
    from autograder.scoring import explain_missing

    preload()
    contestant = Contestant(Path(task.notebook), task.load_timeout, task.memory,
                            Path(task.outcomes).parent / "contestant-stderr.txt", {}, task.drop_to_nobody,
                            keep=tuple(e.name for e in exercises_of(task.chapter)))
    contestant.start_zygote()  # first, while we hold nothing secret
    contestant.start()  # it loads the notebook as we go on
    key = protocol.receive_key(sys.stdin)
    sys.stdin.close()
    not_dumpable()
    records = Records(task.outcomes, key)
    contestant.on_start = lambda process: records.write(protocol.contestant_record(process.pid))
    contestant.on_start(contestant.process)
    signal.signal(signal.SIGTERM, lambda *_: (contestant.kill(), os._exit(0)))
    contestant.references, contestant.reference_definitions = reference_table(task.references)
    importlib.import_module(CHAPTERS[task.chapter].grader_module)
    try:
        loaded = contestant.wait_loaded()
    except LoadTimeout:
        records.write(protocol.load_timeout_record())
        return
    except ContestantDied as error:
        contestant.broken = f"not run: the submission's process ended while loading the notebook ({error})"
        loaded = {"problems": [str(error)], "names": []}
    records.write(protocol.loaded_record(loaded["problems"], loaded["names"]))
    with probes.learner_process(contestant):
        run_graders(task.chapter, RemoteNamespace(contestant), lambda name: explain_missing(loaded["problems"], name),
                    test_timeout=task.test_timeout, on_outcome=lambda o: records.write(protocol.outcome_record(o)))
    records.write(protocol.done_record(contestant.starts - 1))
    contestant.kill()


if __name__ == "__main__":
    if sys.argv[1] == "--zygote":  # the parent's zygote of judges (zygote.ForkServer)
        zygote.serve(int(sys.argv[2]), preload, lambda argv: main(JudgeTask.from_argv(argv)), preload_later)
    else:
        main(JudgeTask.from_argv(sys.argv[1:]))
    os._exit(0)
