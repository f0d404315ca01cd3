"""Published model versions on disk, and the pointer to the one serving.

Learned item vectors live in one of two named vectors of the products collection (``collab_a``,
``collab_b``). A new version is written into the slot not in use; only then does the pointer file
switch to it (an atomic rename), so the old model serves, with its own vectors, until the new one is ready.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from recommender.pipeline.artifacts import TrainedParts
from recommender.sequence.inference import NumpySequenceEncoder
from recommender.sequence.model import ModelConfig, Objective, SequenceModel
from recommender.store.opening import SLOTS

POINTER_FILE = "current.json"


@dataclass(frozen=True)
class PublishedModel:
    version: int
    slot: str
    model: SequenceModel
    product_ids: list[str]  # item index - 1 -> product id
    trained_at: str
    parts: TrainedParts = field(default_factory=TrainedParts)
    # How the sequence model was trained: epochs, the epoch kept, why it stopped, the validation curve
    # and the configurations model selection compared (empty for versions saved before it was kept).
    training: dict = field(default_factory=dict)

    # Computed once per loaded model. A cached_property writes the instance's __dict__ directly, which a
    # frozen dataclass allows; after the first call the stored value answers without the descriptor.
    @cached_property
    def index_of(self) -> dict[str, int]:
        """Product id -> the model's item index."""
        return {product_id: index + 1 for index, product_id in enumerate(self.product_ids)}

    @cached_property
    def encoder(self) -> NumpySequenceEncoder:
        """The model's forward pass for one history, in numpy."""
        return NumpySequenceEncoder(self.model)

    def user_vector(self, recent_product_ids: list[str]) -> np.ndarray | None:
        """The model's state after the user's recent products (oldest first); None if it knows none."""
        index_of = self.index_of
        sequence = [index_of[pid] for pid in recent_product_ids if pid in index_of]
        if not sequence:
            return None
        return self.encoder.next_item_state(sequence)

    def item_vectors(self) -> dict[str, np.ndarray]:
        vectors = self.model.item_vectors().numpy().astype(np.float32)
        return {product_id: vectors[index] for index, product_id in enumerate(self.product_ids)}

    def vectors_by_id(self) -> dict[str, np.ndarray]:
        """``item_vectors``, computed once per loaded model."""
        cached = self.__dict__.get("_vectors_by_id")
        if cached is None:
            cached = self.item_vectors()
            object.__setattr__(self, "_vectors_by_id", cached)
        return cached


class ModelRegistry:
    def __init__(self, path: Path) -> None:
        self._path = Path(path)
        self._lock = threading.Lock()
        self._loaded: PublishedModel | None = None
        self._loaded_stamp: float | None = None

    def current(self) -> PublishedModel | None:
        """The serving model; reloaded when another process (a worker) has published a new one."""
        pointer = self._path / POINTER_FILE
        try:
            stamp = pointer.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        with self._lock:
            if self._loaded is None or stamp != self._loaded_stamp:
                info = json.loads(pointer.read_text())
                self._loaded = self._load(int(info["version"]), str(info["slot"]))
                self._loaded_stamp = stamp
            return self._loaded

    def next_version(self) -> tuple[int, str]:
        """(version, slot) for the model about to be trained: the slot the serving model does not use."""
        current = self.current()
        if current is None:
            return 1, SLOTS[0]
        return current.version + 1, SLOTS[1 - SLOTS.index(current.slot)]

    def save(
        self,
        version: int,
        slot: str,
        model: SequenceModel,
        product_ids: list[str],
        training: dict | None = None,
    ) -> None:
        directory = self._path / f"v{version}"
        directory.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), directory / "model.pt")
        meta = {
            "version": version,
            "slot": slot,
            "config": model.config.as_dict(),
            "product_ids": product_ids,
            "trained_at": datetime.now(UTC).isoformat(),
            "training": training or {},
        }
        (directory / "meta.json").write_text(json.dumps(meta))

    def activate(self, version: int, slot: str) -> None:
        temporary = self._path / f".{POINTER_FILE}.{os.getpid()}"
        temporary.write_text(json.dumps({"version": version, "slot": slot}))
        os.replace(temporary, self._path / POINTER_FILE)

    def _load(self, version: int, slot: str) -> PublishedModel:
        directory = self._path / f"v{version}"
        meta = json.loads((directory / "meta.json").read_text())
        config = {**meta["config"], "objective": Objective(meta["config"]["objective"])}
        model = SequenceModel(ModelConfig(**config))
        model.load_state_dict(torch.load(directory / "model.pt", weights_only=True))
        model.eval()
        return PublishedModel(
            version,
            slot,
            model,
            list(meta["product_ids"]),
            str(meta["trained_at"]),
            TrainedParts.load(directory),
            dict(meta.get("training", {})),
        )

    def directory(self, version: int) -> Path:
        return self._path / f"v{version}"
