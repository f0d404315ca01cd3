"""The shop's own encoders: fine-tuned copies of the configured embedding model, one folder per version
beside the sequence-model versions, and a pointer to the one that serves.

A version serves only on top of the model it was tuned from: when ``RECO_EMBEDDING__MODEL`` names another
model, the pointer is ignored (and said so in the log). Its vectors carry their own model name
(``<base>@shop-v<N>``), so a switch goes through the rebuild path like any change of model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)
ENCODERS_FOLDER = "encoders"
POINTER_FILE = "current.json"
META_FILE = "encoder.json"


@dataclass(frozen=True)
class EncoderVersion:
    version: int
    path: Path  # a sentence-transformers model folder
    base_model: str
    meta: dict[str, Any]

    @property
    def model_name(self) -> str:
        return shop_model_name(self.base_model, self.version)


SHOP_MARK = "@shop-v"


def shop_model_name(base_model: str, version: int) -> str:
    return f"{base_model}{SHOP_MARK}{version}"


def base_model(model_name: str) -> str:
    """The model a (possibly fine-tuned, possibly cross-lingual) model name was tuned from."""
    main, _, second = model_name.partition("+")
    return main.split(SHOP_MARK)[0] + (f"+{second}" if second else "")


class EncoderVersions:
    """Encoder versions under ``<models_path>/encoders``: ``v<N>/`` (the model and ``encoder.json``) and
    the pointer ``current.json``, replaced atomically."""

    def __init__(self, models_path: Path) -> None:
        self._path = Path(models_path) / ENCODERS_FOLDER

    def folder(self, version: int) -> Path:
        return self._path / f"v{version}"

    def next_version(self) -> int:
        numbers = [int(path.name[1:]) for path in self._path.glob("v*") if path.name[1:].isdigit()]
        return max(numbers, default=0) + 1

    def read(self, version: int) -> EncoderVersion | None:
        meta_path = self.folder(version) / META_FILE
        if not meta_path.exists():
            return None
        meta = json.loads(meta_path.read_text())
        return EncoderVersion(version, self.folder(version), str(meta["base_model"]), meta)

    def write_meta(self, version: int, meta: dict[str, Any]) -> None:
        """The figures of a version (published or refused), written whole or not at all."""
        target = self.folder(version) / META_FILE
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_suffix(".tmp")
        scratch.write_text(json.dumps(meta, indent=2))
        os.replace(scratch, target)

    def current(self, configured: str | None = None) -> EncoderVersion | None:
        """The published version; None when there is none, or when it was tuned from a model other than
        ``configured`` (the configured model)."""
        pointer = self._path / POINTER_FILE
        if not pointer.exists():
            return None
        version = self.read(int(json.loads(pointer.read_text())["version"]))
        if version is None:
            logger.warning("the encoder pointer names a version that is not on disk; the base model serves")
            return None
        if configured is not None and version.base_model != configured:
            logger.warning(
                "the shop's encoder v%d was tuned from %s, not the configured %s: that one serves",
                version.version,
                version.base_model,
                configured,
            )
            return None
        return version

    def pointer_signature(self) -> tuple[int, int] | None:
        """What changes whenever a version is published or withdrawn, read without opening a file (a
        request can afford it): the pointer's inode and modification time, None without a pointer."""
        try:
            stat = (self._path / POINTER_FILE).stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns

    def ever_trained(self) -> bool:
        """Whether this shop ever fine-tuned an encoder (nothing to switch to or from otherwise)."""
        return self._path.is_dir()

    def latest(self) -> EncoderVersion | None:
        """The newest version trained, published or not (its figures say which)."""
        return self.read(self.next_version() - 1) if self.next_version() > 1 else None

    def publish(self, version: int) -> None:
        self._path.mkdir(parents=True, exist_ok=True)
        scratch = self._path / (POINTER_FILE + ".tmp")
        scratch.write_text(json.dumps({"version": version}))
        os.replace(scratch, self._path / POINTER_FILE)

    def withdraw(self) -> bool:
        """The configured base model serves again (after the rebuild path re-embeds); True if one served."""
        pointer = self._path / POINTER_FILE
        if not pointer.exists():
            return False
        pointer.unlink()
        return True

    def restore(self, previous: EncoderVersion | None) -> None:
        """Point back at ``previous`` (None: the base model), after a newer version was refused."""
        if previous is None:
            self.withdraw()
        else:
            self.publish(previous.version)

    def discard_model(self, version: int) -> None:
        """Drop a refused version's weights; its figures stay."""
        for child in self.folder(version).iterdir():
            if child.name != META_FILE:
                shutil.rmtree(child) if child.is_dir() else child.unlink()
