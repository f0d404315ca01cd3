"""The store host's wire format: MessagePack with three extension types (numpy arrays, tuples, and the
store's own dataclasses by name). Decoding builds only those types, so a message can carry data and never
code, unlike pickle; and an error crosses as its class name and message, rebuilt only for the core's own
error classes."""

from __future__ import annotations

import dataclasses
import struct
import threading
from typing import Any

import msgpack
import numpy as np

from recommender.errors import (
    ConfigurationError,
    DependencyUnavailableError,
    InvalidInputError,
    NotFoundError,
    RecommenderError,
    StoreLockedError,
)
from recommender.store.base import CollectionSpec, ModelMismatchError, PointToWrite, ScoredPoint, StoredPoint
from recommender.store.conditions import HasIdCondition, MatchAnyCondition, MatchCondition, RangeCondition

ARRAY, TUPLE, RECORD = 1, 2, 3
RECORDS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        CollectionSpec,
        PointToWrite,
        StoredPoint,
        ScoredPoint,
        MatchCondition,
        MatchAnyCondition,
        RangeCondition,
        HasIdCondition,
    )
}
ERRORS: dict[str, type[RecommenderError]] = {
    cls.__name__: cls
    for cls in (
        ConfigurationError,
        StoreLockedError,
        ModelMismatchError,
        InvalidInputError,
        NotFoundError,
        DependencyUnavailableError,
    )
}


class WireError(ValueError):
    """A message that is not one this format makes."""


class StoreHostCallError(RuntimeError):
    """The store failed inside the host with an error that is not the core's own: a bug, not an outage."""


def _default(value: Any) -> msgpack.ExtType:
    if isinstance(value, np.ndarray):
        dtype = value.dtype.str.encode()
        header = struct.pack(f"<B{len(dtype)}sB{value.ndim}q", len(dtype), dtype, value.ndim, *value.shape)
        return msgpack.ExtType(ARRAY, header + value.tobytes())
    if isinstance(value, np.generic):
        return value.item()  # type: ignore[no-any-return]
    if isinstance(value, tuple):
        return msgpack.ExtType(TUPLE, _encode_part(list(value)))
    if dataclasses.is_dataclass(value) and type(value).__name__ in RECORDS:
        fields = [getattr(value, field.name) for field in dataclasses.fields(value)]
        return msgpack.ExtType(RECORD, _encode_part([type(value).__name__, fields]))
    raise TypeError(f"the store host's wire carries no {type(value).__name__}")


def _ext(code: int, data: bytes) -> Any:
    if code == ARRAY:
        (size,) = struct.unpack_from("<B", data)
        dtype = np.dtype(data[1 : 1 + size].decode())
        if dtype.kind not in "biuf":
            raise WireError(f"array of {dtype}")
        (ndim,) = struct.unpack_from("<B", data, 1 + size)
        shape = struct.unpack_from(f"<{ndim}q", data, 2 + size)
        return np.frombuffer(data, dtype=dtype, offset=2 + size + 8 * ndim).reshape(shape).copy()
    if code == TUPLE:
        return tuple(decode(data))
    if code == RECORD:
        name, fields = decode(data)
        if name not in RECORDS:
            raise WireError(f"unknown record {name!r}")
        return RECORDS[name](*fields)
    raise WireError(f"unknown extension {code}")


def _packer() -> msgpack.Packer:
    return msgpack.Packer(default=_default, strict_types=True, use_bin_type=True)


def _encode_part(value: Any) -> bytes:
    """A part inside an extension (a tuple, a record): a packer of its own, as the thread's is mid-message."""
    return _packer().pack(value)  # type: ignore[no-any-return]


_local = threading.local()


def encode(value: Any) -> bytes:
    # One packer per thread, reused: a new one grows its buffer from scratch (0.2 ms for 150 kB of vectors).
    packer = getattr(_local, "packer", None)
    if packer is None:
        packer = _local.packer = _packer()
    return packer.pack(value)  # type: ignore[no-any-return]


def decode(data: bytes) -> Any:
    try:
        return msgpack.unpackb(data, ext_hook=_ext, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException) as error:
        raise WireError(f"not a store host message: {error}") from error


def error_message(error: BaseException) -> list[Any]:
    """What crosses for an error: the core's own by class and arguments, anything else as a bug."""
    if type(error).__name__ in ERRORS and isinstance(error, RecommenderError):
        return ["error", type(error).__name__, list(error.args)]
    return ["bug", type(error).__name__, str(error)[:500]]


def raise_answer(answer: list[Any]) -> Any:
    """The result of an answer, or its error raised here."""
    kind = answer[0]
    if kind == "ok":
        return answer[1]
    if kind == "error" and answer[1] in ERRORS:
        raise ERRORS[answer[1]](*answer[2])
    raise StoreHostCallError(f"{answer[1]} in the store host: {answer[2]}")
