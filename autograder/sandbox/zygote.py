"""Zygotes: processes that have imported torch and hold no secret, and fork the processes that
grading needs, in milliseconds rather than the seconds of a new Python that imports torch.

- ``Zygote``: a fork of the judge made before it reads the key or loads a reference. Every
  contestant, the first and each restart, is a fork of it. A child is handed over to the judge:
  the judge is a child subreaper, and the zygote forks twice and lets the middle process exit, so
  the judge adopts the child and waits for it and kills it like any child of its own.
- ``ForkServer``: the parent's zygote of judges (``python -m autograder.sandbox.judge --zygote``),
  one per grading thread: it forks a judge for each submission and reports the judge's exit
  status (``serve``, its side).
"""

from __future__ import annotations

import ctypes
import importlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import weakref

from autograder.sandbox.limits import PR_SET_CHILD_SUBREAPER, PR_SET_PDEATHSIG, limit_resources, not_dumpable

ADOPTION_TIMEOUT = 5.0  # seconds a child waits to be handed over before it gives up
FORK_TIMEOUT = 5.0  # seconds the maker waits for a child's pid before it starts one another way


class Zygote:
    """The maker's end: ``fork`` starts ``main(fd)`` in a new child, which talks on ``fd``."""

    def __init__(self, main):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
        self.control, theirs = socket.socketpair()
        self.control.settimeout(FORK_TIMEOUT)  # a zygote the submission stopped must not stop us
        self.pid = os.fork()
        if self.pid == 0:
            self.control.close()
            _run(_serve, theirs, main)
        theirs.close()

    def fork(self, channel: socket.socket) -> Child | None:
        """A new child that talks on ``channel``; None when the zygote is gone."""
        try:
            socket.send_fds(self.control, [b"fork"], [channel.fileno()])
            pid = self.control.recv(32)
        except OSError:
            return None
        return Child(int(pid)) if pid.isdigit() else None

    def close(self) -> None:
        self.control.close()
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass


class Child:
    """A child by its pid, with the parts of subprocess.Popen's interface that the judge uses."""

    def __init__(self, pid: int):
        self.pid, self.returncode = pid, None

    def poll(self):
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self):
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def _serve(control: socket.socket, main) -> None:
    """In the zygote: fork a child for each request, until the maker closes the connection."""
    maker = os.getppid()
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)  # the judge's key arrives on its stdin: never read here
    if os.getppid() != maker:
        return
    while True:
        try:
            _, fds, _, _ = socket.recv_fds(control, 16, 1)
        except OSError:
            return
        if not fds:
            return  # the maker is gone
        pid = _fork_twice(main, fds[0], maker)
        os.close(fds[0])
        control.sendall(pid or b"-")


def _fork_twice(main, fd: int, maker: int) -> bytes:
    """The pid of a grandchild running ``main(fd)``, once the middle process has exited (empty
    if it could not be forked)."""
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        _run(_fork_child, main, fd, maker, read, write)
    os.close(write)
    pid = os.read(read, 32)
    os.close(read)
    os.waitpid(middle, 0)  # once it is reaped, the grandchild has its new parent
    return pid


def _fork_child(main, fd: int, maker: int, read: int, write: int) -> None:
    os.close(read)
    pid = os.fork()
    if pid == 0:
        os.close(write)
        _run(_adopted, main, fd, maker)
    os.write(write, str(pid).encode())


def _adopted(main, fd: int, maker: int) -> None:
    deadline = time.monotonic() + ADOPTION_TIMEOUT
    while os.getppid() != maker:
        if time.monotonic() > deadline:
            return
        time.sleep(0.001)
    main(fd)


def _run(function, *args) -> None:
    """Run ``function`` in a forked process, then end the process without Python's teardown."""
    code = 0
    try:
        function(*args)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


# ---- the parent's zygote of judges ------------------------------------------------------------
READY_TIMEOUT = 120.0  # seconds a new fork server may take to import torch and the rest
REQUEST_TIMEOUT = 60.0  # seconds it may take to import a request's modules and fork
EXIT_TIMEOUT = 10.0  # seconds the parent waits for a killed child's exit status


class ForkServer:
    """The parent's end of ``python -m MODULE --zygote``, a Python that has imported what MODULE's
    processes need and forks one per request (``serve``). It holds no secret: a child's stdin
    (the judge's key) passes through it unread. It dies with the thread that started it, so a
    ``grade-all`` worker keeps one for all the submissions it grades."""

    def __init__(self, module: str, env: dict, cwd: str):
        self.control, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", module, "--zygote", str(theirs.fileno())], cwd=cwd, env=env,
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        theirs.close()
        self.ready = self.broken = False
        self.child: Forked | None = None
        weakref.finalize(self, _end, self.process, self.control)

    def usable(self) -> bool:
        return not self.broken and self.process.poll() is None

    def start(self, request: dict, stdin: int, stderr: int) -> Forked | None:
        """A child for ``request`` (argv, env, cwd, memory, and the modules to import first, once
        for every later child), reading ``stdin`` and writing ``stderr``, in a session of its own;
        None when this server cannot fork it (then it is broken, and the caller starts the process
        another way)."""
        if self.child is not None:
            self.child.wait()  # its exit status comes first
        try:
            if not self.ready:
                self.control.settimeout(READY_TIMEOUT)
                self.ready = self.control.recv(16) == b"ready"
            self.control.settimeout(REQUEST_TIMEOUT)  # a server the submission stopped must not stop us
            socket.send_fds(self.control, [json.dumps(request).encode()], [stdin, stderr])
            pid = self.control.recv(32)
        except OSError:
            pid = b""
        if not (self.ready and pid.isdigit()):
            self.close()
            return None
        self.child = Forked(int(pid), self)
        return self.child

    def close(self) -> None:
        self.broken = True
        _end(self.process, self.control)


class Forked:
    """A child of a ForkServer, with the parts of subprocess.Popen's interface that the parent
    uses; its exit status comes from the server."""

    def __init__(self, pid: int, server: ForkServer):
        self.pid, self.server, self.returncode = pid, server, None

    def poll(self):
        if self.returncode is None:
            self._read_exit(0)
        return self.returncode

    def wait(self, timeout: float | None = None):
        if self.returncode is None and not self._read_exit(EXIT_TIMEOUT if timeout is None else timeout):
            if timeout is not None:
                raise subprocess.TimeoutExpired("judge", timeout)
            self.server.close()  # it does not answer: end it, and the child with it
            self.returncode = -signal.SIGKILL
        return self.returncode

    def _read_exit(self, timeout: float) -> bool:
        control, ready = self.server.control, select.poll()
        try:
            ready.register(control, select.POLLIN)
            if not ready.poll(timeout * 1000):
                return False
            status = control.recv(32)
        except (OSError, ValueError):
            status = b""
        if not status.lstrip(b"-").isdigit():  # the server died, and the child with it
            self.server.close()
            status = str(-signal.SIGKILL).encode()
        self.returncode = int(status)
        return True


def _end(process: subprocess.Popen, control: socket.socket) -> None:
    control.close()
    if process.poll() is None:
        process.kill()
        process.wait()


def serve(fd: int, preload, main, preload_later=None) -> None:
    """The fork server's side: import (``preload``), say so, then fork a child per request that
    runs ``main(argv)``, and report its exit status. Once the first child has ended, import
    what ``preload_later`` imports, for the children after it."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    not_dumpable()  # a contestant of our user may not read or change us, nor what we fork
    preload()
    control = socket.socket(fileno=fd)
    control.sendall(b"ready")
    while True:
        message, fds, _, _ = socket.recv_fds(control, 1 << 20, 2)
        if not message or len(fds) != 2:
            return  # the parent is gone
        request = json.loads(message)
        _import(request["imports"])
        pid = os.fork()
        if pid == 0:
            control.close()
            _run(_become, request, *fds, main)
        for received in fds:
            os.close(received)
        control.sendall(str(pid).encode())
        control.sendall(str(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])).encode())
        if preload_later is not None:
            preload_later()
            preload_later = None


def _import(modules: list[str]) -> None:
    """Import what the submission's notebooks import (sklearn, say), as the child would."""
    for module in modules:
        try:
            importlib.import_module(module)
        except Exception:
            pass  # the child reports it, if it matters


def _become(request: dict, stdin: int, stderr: int, main) -> None:
    """In a forked child: what a new process with the request's command, session and limits would be."""
    os.setsid()
    os.dup2(stdin, 0)
    os.dup2(os.open(os.devnull, os.O_RDWR), 1)
    os.dup2(stderr, 2)
    os.closerange(3, 65536)
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # the request's TMPDIR, not the server's
    limit_resources(request["memory"])
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    main(request["argv"])
