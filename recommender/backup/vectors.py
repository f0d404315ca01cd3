"""A collection's points to a file and back, through the VectorStore protocol: the same on the embedded
store and on a Qdrant server, so a backup of one restores into the other.

The file is a stream of MessagePack records, one per point: its id, its payload, and each of its vectors
as little-endian float32 bytes (the main vector under its name, and every named extra vector it has)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import msgpack
import numpy as np

from recommender.store.base import PointToWrite, VectorStore

PAGE = 256


def dump_collection(store: VectorStore, path: Path) -> int:
    """Writes every point of ``store`` to ``path``; returns how many."""
    names = [store.spec.vector_name, *(name for name, _ in store.spec.extra_vectors)]
    written = 0
    offset: str | None = None
    with path.open("wb") as file:
        while True:
            page, offset = store.scroll(PAGE, offset)
            if not page:
                break
            ids = [point.point_id for point in page]
            vectors: dict[str, dict[str, np.ndarray]] = {point_id: {} for point_id in ids}
            for name in names:
                for point in store.retrieve(ids, with_vectors=True, payload_keys=[], vector_name=name):
                    if point.vector is not None:
                        vectors[point.point_id][name] = point.vector
            for point in page:
                record = {
                    "id": point.point_id,
                    "payload": point.payload,
                    "vectors": {
                        name: np.asarray(vector, dtype="<f4").tobytes()
                        for name, vector in vectors[point.point_id].items()
                    },
                }
                file.write(msgpack.packb(record, use_bin_type=True))
                written += 1
            if offset is None:
                break
    return written


def load_collection(store: VectorStore, path: Path) -> int:
    """Writes the points of a dump into ``store`` (main vector and payload, then the named vectors)."""
    main = store.spec.vector_name
    loaded = 0
    with path.open("rb") as file:
        for page in _pages(file):
            store.upsert(
                [
                    PointToWrite(record["id"], _vector(record["vectors"][main]), record["payload"])
                    for record in page
                ]
            )
            for name, _ in store.spec.extra_vectors:
                named = {
                    record["id"]: _vector(record["vectors"][name])
                    for record in page
                    if name in record["vectors"]
                }
                store.update_vectors(name, named)
            loaded += len(page)
    return loaded


def _pages(file: BinaryIO) -> Iterator[list[dict[str, Any]]]:
    page: list[dict[str, Any]] = []
    for record in msgpack.Unpacker(file, raw=False, strict_map_key=False):
        page.append(record)
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


def _vector(data: bytes) -> np.ndarray:
    return np.frombuffer(data, dtype="<f4").astype(np.float32)
