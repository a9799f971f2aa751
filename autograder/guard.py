"""Undo a submission's monkeypatching of the libraries the graders rely on.

Before any learner code runs, ``NamespaceGuard`` records the attributes of builtins, torch,
torch.Tensor, torch.nn, torch.nn.functional, numpy, math and every loaded autograder module,
and which module objects ``sys.modules`` holds for them. ``restore()`` puts back whatever a
submission replaced, added or deleted. The grading child calls it after loading the
notebook, before and after every grader test and after every call into learner code
(``probes.call_learner``), so a patched ``torch.allclose`` or ``autograder.probes.check_close``
never judges a check.
"""

from __future__ import annotations

import builtins
import math
import sys

_MISSING = object()


class NamespaceGuard:
    def __init__(self, objects):
        self.saved = [(obj, dict(vars(obj))) for obj in objects]
        self.modules = {name: module for name, module in sys.modules.items()
                        if any(module is obj for obj, _ in self.saved)}
        self.restored = 0  # how many attributes were put back: a sign of tampering

    @classmethod
    def install(cls) -> "NamespaceGuard":
        """Snapshot the grading libraries and make ``probes.call_learner`` restore them."""
        import numpy
        import torch
        import torch.nn.functional

        from autograder import probes
        objects = [builtins, math, numpy, torch, torch.Tensor, torch.nn, torch.nn.Module, torch.nn.functional,
                   torch.testing]
        objects += [m for name, m in sorted(sys.modules.items()) if name.startswith("autograder") and m]
        guard = cls.__new__(cls)
        probes.GUARD = guard  # before the snapshot, or the first restore would unset it
        guard.__init__(objects)
        return guard

    def restore(self) -> None:
        for name, module in self.modules.items():
            if sys.modules.get(name) is not module:
                sys.modules[name] = module
                self.restored += 1
        for obj, saved in self.saved:
            current = vars(obj)
            for key, value in saved.items():
                if current.get(key, _MISSING) is not value:
                    _set(obj, key, value)
                    self.restored += 1
            # A new attribute matters on a class (it shadows an inherited method) or as a module
            # dunder (__getattr__); new plain module attributes are lazily imported submodules.
            for key in [k for k in current if k not in saved and (isinstance(obj, type) or k.startswith("__"))]:
                _delete(obj, key)
                self.restored += 1


def _set(obj, key, value):
    try:
        setattr(obj, key, value)
    except (AttributeError, TypeError):
        pass  # a read-only slot cannot have been patched either


def _delete(obj, key):
    try:
        delattr(obj, key)
    except (AttributeError, TypeError):
        pass
