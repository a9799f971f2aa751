"""What confines the sandbox's processes: resource limits, and the Linux calls that take away
what the contestant could otherwise do (outlive the judge, read its memory, regain privileges)."""

from __future__ import annotations

import ctypes
import os
import resource
import signal

MAX_OUTPUT = 64 << 20  # bytes any file the judge or the contestant writes may reach
MAX_PROCESSES = 256  # per user; root ignores it, which is why the contestant drops to nobody when it can
NOBODY = 65534

# prctl(2) options and capset(2)'s header version, from <linux/prctl.h> and <linux/capability.h>.
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAPABILITIES = 64  # at least as many as any kernel defines: dropping an unknown one does nothing


def limit_resources(memory: int) -> None:
    """Address space, file size, no core dumps, processes: for the judge and the contestant."""
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_FSIZE, (MAX_OUTPUT, MAX_OUTPUT))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (MAX_PROCESSES, MAX_PROCESSES))


def confine_contestant(memory: int, drop_to_nobody: bool) -> None:
    """In the contestant, before it runs Python: limits, dies with the judge, no privileges."""
    limit_resources(memory)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # gone when the judge goes
    if drop_to_nobody:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    # Root keeps its user id but loses every capability: it cannot read a non-dumpable judge's
    # memory, change the clock or get around file permissions. The bounding set for what an exec
    # would grant, capset for what we hold now, then no new privileges from setuid programs.
    for capability in range(CAPABILITIES):
        libc.prctl(PR_CAPBSET_DROP, capability, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(LINUX_CAPABILITY_VERSION_3, 0)  # 0: this process
    libc.capset(header, (ctypes.c_uint32 * 6)())  # effective, permitted, inheritable: all empty
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)


def not_dumpable() -> None:
    """No process of our user may attach to us or read our memory (the key, the references)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except (OSError, AttributeError):
        pass
