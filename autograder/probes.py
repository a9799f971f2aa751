"""What graders probe with: random inputs, a reference/learner pair holding the same random
weights, and comparisons (torch.testing.assert_close) that name misconceptions.

A check compares the learner's value with the reference's. When they differ, it tries the
misconception variants it was given on the same inputs; a variant that reproduces the
learner's value names the misconception in the failure.
"""

from __future__ import annotations

import contextlib
import contextvars
import signal
import threading

import torch

from autograder.misconceptions import MISCONCEPTIONS

# Comparisons use torch.testing.assert_close's tolerances, except in half precision: its atol
# of 1e-5 is far below the spacing of bfloat16 and float16 numbers, so a correct computation
# in another order would fail.
HALF_PRECISION = {torch.bfloat16: {"rtol": 1.6e-2, "atol": 1e-2}, torch.float16: {"rtol": 1e-3, "atol": 1e-3}}


# The judge's sandbox.judge.Contestant while graders run against learner code in another
# process (``learner_process``): after each call into that code, backward passes that reached
# its tensors continue there.
_LEARNER_PROCESS: contextvars.ContextVar = contextvars.ContextVar("learner_process", default=None)


@contextlib.contextmanager
def learner_process(contestant):
    """Within this block, graders reach the learner's code through ``contestant``."""
    token = _LEARNER_PROCESS.set(contestant)
    try:
        yield contestant
    finally:
        _LEARNER_PROCESS.reset(token)


def _sync_gradients() -> None:
    contestant = _LEARNER_PROCESS.get()
    if contestant is not None:
        contestant.sync_gradients()


class GraderTimeout(Exception):
    """Raised inside a test that ran past its time limit."""


class CheckFailed(AssertionError):
    """A grader check that failed. The message says what went wrong; ``misconception`` is the
    catalogue id that explains it, if any, kept apart: autograder.views puts its hint and
    section into words, once in each view."""

    def __init__(self, message: str, misconception: str | None = None):
        if misconception and misconception not in MISCONCEPTIONS:
            raise KeyError(f"misconception {misconception!r} is not in the catalogue")
        super().__init__(message)
        self.misconception = misconception


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def randn(*shape, seed: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=generator(seed), dtype=torch.float64).to(dtype)


def random_mask(*shape, seed: int, p_keep: float = 0.6) -> torch.Tensor:
    return torch.rand(*shape, generator=generator(seed)) < p_keep


# Random weights. A draw maps (parameter name, shape, generator) to float64 values; torch's own
# initialisation is no good here, since its zero biases and unit gains hide bugs.

def normal(std: float = 0.5):
    """A draw of mean 0 and standard deviation ``std``."""
    def draw(name, shape, generator):
        return std * torch.randn(shape, generator=generator, dtype=torch.float64)
    return draw


def scaled_by_fan_in(name, shape, generator):
    """A draw for deep blocks, whose activations it keeps near unit size: matrices of standard
    deviation 1.5 / sqrt(fan_in), vectors of 0.5, around 1 for gains (1-D weights)."""
    noise = torch.randn(shape, generator=generator, dtype=torch.float64)
    if len(shape) > 1:
        return noise / shape[-1] ** 0.5 * 1.5
    return noise * 0.5 + (1.0 if name.endswith("weight") else 0.0)


def randomise(module, seed: int, draw=normal()):
    """``module`` with random values in every parameter: the i-th, in the module's order, drawn
    from generator(seed + i) and cast to its dtype."""
    with torch.no_grad():
        for i, (name, parameter) in enumerate(module.named_parameters()):
            parameter.copy_(draw(name, parameter.shape, generator(seed + i)).to(parameter.dtype))
    return module


def matches(actual, expected, **tolerance) -> bool:
    """Whether torch.testing.assert_close(actual, expected) passes: the same shape, dtype and device,
    and values within ``tolerance`` (rtol and atol, both or neither; else the dtype's)."""
    try:
        torch.testing.assert_close(actual, expected, **(tolerance or HALF_PRECISION.get(expected.dtype, {})))
    except AssertionError:
        return False
    return True


def describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def check_close(actual, expected, what: str, variants: dict | None = None, **tolerance) -> None:
    """Fail unless ``actual`` matches ``expected`` (see ``matches``), saying how it does not.

    ``variants`` maps a misconception id to the value that misconception would produce on
    the same inputs (see ``diagnose``).
    """
    if not isinstance(actual, torch.Tensor):
        raise CheckFailed(f"{what}: expected {describe(expected)}, got {describe(actual)}")
    if actual.shape != expected.shape:
        raise CheckFailed(f"{what}: expected shape {tuple(expected.shape)}, got {tuple(actual.shape)}",
                          diagnose(actual, variants, **tolerance))
    if actual.dtype != expected.dtype:
        raise CheckFailed(f"{what}: expected dtype {expected.dtype}, got {actual.dtype}")
    if matches(actual, expected, **tolerance):
        return
    if torch.isnan(actual).any() and not torch.isnan(expected).any():
        raise CheckFailed(f"{what}: contains NaN where the reference has none", diagnose(actual, variants, **tolerance))
    error = (actual.double() - expected.double()).abs().max().item()
    raise CheckFailed(f"{what}: differs from the reference (largest difference {error:.3g})",
                      diagnose(actual, variants, **tolerance))


def diagnose(actual, variants: dict | None, **tolerance) -> str | None:
    """The id of the first misconception whose variant reproduces ``actual``, else None.

    A variant is a tensor, an (output, weights) pair, a function computing either lazily, or a
    list of those when a misconception takes several forms.
    """
    for misconception, forms in (variants or {}).items():
        for value in forms if isinstance(forms, list) else [forms]:
            if callable(value):
                try:
                    value = value()
                except Exception:
                    continue
            if isinstance(value, tuple):
                value = value[0]
            if isinstance(value, torch.Tensor) and matches(actual, value.to(actual.dtype), **tolerance):
                return misconception
    return None


def clones(*tensors, requires_grad: bool = False):
    """Fresh leaf copies, so that the learner's code never touches the reference's inputs."""
    return tuple(t.detach().clone().requires_grad_(requires_grad) for t in tensors)


def call_learner(function, *args, what: str, **kwargs):
    """Call learner code; turn an exception into a failed check that says where it came from."""
    try:
        return function(*args, **kwargs)
    except (CheckFailed, GraderTimeout):
        raise
    except NotImplementedError as error:
        raise CheckFailed(f"{what} is not implemented yet (it raises NotImplementedError)") from error
    except BaseException as error:  # SystemExit and KeyboardInterrupt from learner code are results too
        raise CheckFailed(f"{what} raised {type(error).__name__}: {error}") from error
    finally:
        _sync_gradients()


def check_gradients(what: str, inputs, module=None, reference=None) -> None:
    """Compare gradients after a backward pass through the learner's and the reference's code.

    Args:
        what: the thing differentiated, for the messages ("MultiHeadAttention").
        inputs: (name, learner's leaf, reference's leaf) triples.
        module, reference: the learner's and the reference's modules, whose parameters of the
            same name must have the same gradient (parameters the reference lacks are skipped).
    """
    _sync_gradients()
    for name, actual, expected in inputs:
        if actual.grad is None:
            raise CheckFailed(f"no gradient of {what} reaches {name}: is the output detached from it?")
        check_close(actual.grad, expected.grad, f"gradient of {what} with respect to {name}")
    if module is None:
        return
    expected = dict(reference.named_parameters())
    for name, parameter in module.named_parameters():
        if name not in expected:
            continue
        if parameter.grad is None:
            raise CheckFailed(f"no gradient of {what} reaches its parameter {name}")
        check_close(parameter.grad, expected[name].grad, f"gradient of {what} with respect to its parameter {name}")


def load_state(module, state_dict, what: str, hint=None) -> None:
    """Copy weights into the learner's module strictly: a renamed parameter fails and names its key.
    ``hint(module)`` may name the misconception behind a failure."""
    try:
        module.load_state_dict(state_dict, strict=True)
    except Exception as error:
        raise CheckFailed(f"{what}: cannot load the reference's parameters ({error})".replace("\n", " "),
                          hint(module) if hint else None)


def build_pair(learner_class, reference_class, *args, what: str, seed: int, dtype=torch.float64,
               draw=normal(), hint=None, **kwargs):
    """The reference's module with random weights (see ``randomise``) and the learner's module
    holding the same weights, both built with ``(*args, **kwargs)`` and moved to ``dtype``.

    ``what`` is the constructor call as messages name it ("SelfAttention(6, 10)"); ``hint`` is
    passed to ``load_state``.
    """
    reference = randomise(reference_class(*args, **kwargs).to(dtype), seed, draw)
    module = call_learner(learner_class, *args, what=what, **kwargs)
    call_learner(module.to, dtype, what=f"{what}.to({dtype})")
    load_state(module, reference.state_dict(), what, hint)
    return module, reference


def in_learner_process(factory, *args, **kwargs):
    """``factory(*args, **kwargs)`` built where the learner's code runs, for objects that code
    changes in place and a check then inspects (a module it loads from, a recording model).
    ``factory`` must be importable by name (a class or function of a grader or of torch)."""
    contestant = _LEARNER_PROCESS.get()
    if contestant is None:
        return factory(*args, **kwargs)
    encode = contestant.encode
    return contestant.request("call", factory, encode(args), {k: encode(v) for k, v in kwargs.items()})


def is_parameter(value) -> bool:
    """isinstance(value, nn.Parameter), for a learner's object here or in the contestant."""
    return isinstance(value, torch.nn.Parameter) or "torch.nn.parameter:Parameter" in getattr(type(value), "remote_bases", ())


class time_limit:
    """SIGALRM-based limit for one test; a no-op off the main thread or without SIGALRM."""

    def __init__(self, seconds):
        self.seconds = seconds
        self.active = bool(seconds) and hasattr(signal, "SIGALRM") \
            and threading.current_thread() is threading.main_thread()

    def __enter__(self):
        if self.active:
            def expire(signum, frame):
                raise GraderTimeout(f"took longer than {self.seconds:g} s (an endless loop?)")
            self.previous = signal.signal(signal.SIGALRM, expire)
            signal.setitimer(signal.ITIMER_REAL, self.seconds)

    def __exit__(self, *exc):
        if self.active:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self.previous)
        return False
