"""The wire encoding between the judge and the contestant, defined once for both ends.

Requests are pickles (the judge is trusted). Replies are plain data, written with ``torch.save``
and read with ``torch.load(weights_only=True)``, so that nothing the learner's code builds can
execute in the judge. Values in both are tagged tuples (``Codec``).
"""

from __future__ import annotations

import dataclasses
import io

import torch

MAX_MESSAGE = 256 << 20  # bytes of one request or reply


def save(message) -> bytes:
    """A reply (or the contestant's first message, what it loaded) as bytes."""
    buffer = io.BytesIO()
    torch.save(message, buffer)
    return buffer.getvalue()


def load(data: bytes):
    """A reply as plain data: tensors, numbers, strings, and containers of them, nothing else."""
    return torch.load(io.BytesIO(data), weights_only=True)


# A value crosses as itself (a primitive) or as a tuple tagged by its first item:
LIST, TUPLE, DICT = "L", "T", "M"  # (LIST, items), (TUPLE, items), (DICT, [[key, value], ...])
SIZE, DTYPE, DEVICE = "S", "D", "V"  # (SIZE, dims), (DTYPE, "float64"), (DEVICE, "cpu")
# (TENSOR, copy, link): a contestant's tensor; link >= 0 when it requires grad, so that the judge
# can send the gradient of its copy back ("backward").
TENSOR = "X"
# (HANDLE, handle, [type name, bases]): any other object of the contestant, kept there. In a
# request, the persistent id (HANDLE, handle) names it.
HANDLE = "H"
# (OWN, kind, (HANDLE, ...), items): a container of the learner's own type (a NamedTuple, a
# dataclass, a dict or list subclass): its items, and a handle on it.
OWN = "O"
# (SENT, judge id, kind, payload) from the judge: an object it sends by identity, so that what
# the learner's code does to it in place comes back as an update (judge id, kind, data).
# (SENT, judge id) from the contestant: that object, which the judge uses itself.
SENT = "A"
REFERENCE = "R"  # persistent id (REFERENCE, chapter, name) of a reference definition in a request
SENT_KINDS = ("tensor", "list", "dict", "generator", "own")
OWN_KINDS = ("tuple", "list", "dict", "fields")  # "dict" and "fields" (a dataclass's) hold pairs
PRIMITIVES = (type(None), bool, int, float, str, bytes)
MAX_DEPTH = 64
DECODERS = {LIST: "_decode_list", TUPLE: "_decode_tuple", DICT: "_decode_dict", SIZE: "_decode_size",
            DTYPE: "_decode_dtype", DEVICE: "_decode_device", TENSOR: "decode_tensor", HANDLE: "decode_handle",
            OWN: "decode_own", SENT: "decode_sent"}


def own_kind(value) -> str | None:
    """The OWN_KINDS kind of a container of the learner's own type (not a plain tuple, list or
    dict: those are encoded before), else None."""
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, (tuple, list)):
        return "tuple" if isinstance(value, tuple) else "list"
    return "fields" if is_dataclass_instance(value) else None


def own_items(value, kind: str):
    """A container's items: pairs for "dict" and "fields"."""
    if kind == "dict":
        return value.items()
    if kind == "fields":
        return [(f.name, getattr(value, f.name)) for f in dataclasses.fields(value)]
    return value


def is_dataclass_instance(value) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


class Codec:
    """One end of the wire encoding. The walk over primitives, sizes, dtypes, devices, tuples and
    containers is here; what each end does differently is in its hooks: the judge sends lists,
    dicts, tensors and generators by identity (SENT), the contestant sends copies of its tensors
    and handles on everything else."""

    # ---- encoding ----
    def encode(self, value, depth=0):
        if depth > MAX_DEPTH:
            raise ValueError(f"a value nested more than {MAX_DEPTH} deep")
        known = self.encode_known(value)
        if known is not None:
            return known
        kind = type(value)
        if kind in PRIMITIVES:
            return value
        if kind is torch.Size:
            return (SIZE, [int(d) for d in value])
        if kind is torch.dtype:
            return (DTYPE, str(value).removeprefix("torch."))
        if kind is torch.device:
            return (DEVICE, str(value))
        if kind is tuple:
            return (TUPLE, self.encode_items(value, depth))
        if kind is list:
            return self.encode_list(value, depth)
        if kind is dict:
            return self.encode_dict(value, depth)
        if isinstance(value, torch.Tensor):
            return self.encode_tensor(value)
        return self.encode_other(value, depth)

    def encode_items(self, items, depth) -> list:
        return [self.encode(item, depth + 1) for item in items]

    def encode_pairs(self, pairs, depth) -> list:
        return [[self.encode(k, depth + 1), self.encode(v, depth + 1)] for k, v in pairs]

    def encode_own_items(self, kind: str, items, depth) -> list:
        return self.encode_pairs(items, depth) if kind in ("dict", "fields") else self.encode_items(items, depth)

    def encode_known(self, value):
        """Hook: the encoding of an object that crossed before, else None."""
        return None

    def encode_list(self, value, depth):
        return (LIST, self.encode_items(value, depth))

    def encode_dict(self, value, depth):
        return (DICT, self.encode_pairs(value.items(), depth))

    def encode_tensor(self, value):
        raise NotImplementedError

    def encode_other(self, value, depth):
        raise NotImplementedError

    # ---- decoding ----
    def decode(self, node, depth=0):
        if type(node) in PRIMITIVES:
            return node
        if type(node) is not tuple:
            return self.decode_object(node)
        if not node or depth > MAX_DEPTH or not isinstance(node[0], str) or node[0] not in DECODERS:
            raise ValueError("not a tagged value")
        return getattr(self, DECODERS[node[0]])(*node[1:], depth=depth + 1)

    def decode_items(self, items, depth) -> list:
        return [self.decode(item, depth) for item in items]

    def decode_pairs(self, pairs, depth) -> list[tuple]:
        return [(self.decode(k, depth), self.decode(v, depth)) for k, v in pairs]

    def decode_own_items(self, kind: str, items, depth) -> list:
        return self.decode_pairs(items, depth) if kind in ("dict", "fields") else self.decode_items(items, depth)

    def _decode_list(self, items, depth):
        return self.decode_items(items, depth)

    def _decode_tuple(self, items, depth):
        return tuple(self.decode_items(items, depth))

    def _decode_dict(self, pairs, depth):
        return dict(self.decode_pairs(pairs, depth))

    def _decode_size(self, dims, depth):
        return torch.Size([int(d) for d in dims])

    def _decode_dtype(self, name, depth):
        dtype = getattr(torch, str(name), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError("not a dtype")
        return dtype

    def _decode_device(self, name, depth):
        return torch.device(str(name))

    def decode_object(self, node):
        """Hook: a value that is neither a primitive nor tagged (only a trusted pickle has them)."""
        raise ValueError("not a tagged value")

    def decode_tensor(self, data, link, depth):
        raise ValueError("a tensor copy where none may be")

    def decode_handle(self, handle, info, depth):
        raise ValueError("a handle where none may be")

    def decode_own(self, kind, handle, items, depth):
        raise ValueError("a container of the learner's own type where none may be")

    def decode_sent(self, judge_id, *payload, depth):
        raise ValueError("a sent object where none may be")
