"""Which weights llama.cpp runs: the GGUF file as given, or a copy re-quantized once to Q8_0.

Ranking with a small model on a CPU is bound by prompt processing (a batched matrix product). llama.cpp has
a fast batched path (its llamafile kernels) for some weight types only; SmolLM2's packaged file is Q4_1,
which is not one of them. Measured here (2 cores, 530-token prompt): Q4_1 1.86 s, the same weights as Q8_0
0.82 s (both with flash attention); generation speed is unchanged. Q8_0 holds a Q4_1 weight almost exactly
(8 bits against 4 per value, one scale per 32 values), so the model's answers stay the same model's.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import tempfile
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Literal

logger = logging.getLogger(__name__)

WeightsChoice = Literal["auto", "q8_0", "file"]
# llama.cpp file types (general.file_type) that already take the fast batched path on x86.
FAST_FILE_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 7: "Q8_0", 8: "Q5_0", 25: "IQ4_NL", 32: "BF16"}
# "auto" leaves big files alone: a Q8_0 copy of a 7B model would double its memory.
AUTO_LIMIT_BYTES = 2 * 1024**3


def file_type(path: Path) -> int | None:
    """The GGUF's general.file_type, read without loading the weights."""
    from llama_cpp import Llama

    with _quiet():
        metadata = Llama(model_path=str(path), vocab_only=True, verbose=False).metadata
    value = metadata.get("general.file_type")
    return int(value) if value is not None else None


def runnable_weights(path: Path, choice: WeightsChoice, cache_dir: Path) -> Path:
    """The file llama.cpp should load: ``path`` itself, or its Q8_0 copy (made once, kept in
    ``cache_dir``, written whole or not at all)."""
    if choice == "file":
        return path
    stat = path.stat()
    if choice == "auto" and (stat.st_size > AUTO_LIMIT_BYTES or file_type(path) in FAST_FILE_TYPES):
        return path
    key = hashlib.sha256(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}|q8_0-v1".encode()).hexdigest()
    target = cache_dir / f"{path.stem}-{key[:16]}.q8_0.gguf"
    if target.exists():
        return target
    logger.warning("re-quantizing %s to Q8_0 (once, cached in %s)", path.name, cache_dir)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache_dir) as scratch:
            written = Path(scratch) / "model.gguf"
            _quantize(path, written)
            os.replace(written, target)
    except (OSError, RuntimeError) as error:
        # Slower, not broken: a cache folder that cannot be written must not stop the service.
        logger.warning("could not make the Q8_0 copy (%s): running %s as it is", error, path.name)
        return path
    return target


def _quiet() -> AbstractContextManager[object]:
    """llama.cpp logs every tensor it converts to the process's stderr; keep that out of the service log."""
    try:
        from llama_cpp._utils import suppress_stdout_stderr
    except ImportError:  # a private helper: without it the log is only noisy
        return nullcontext()
    return suppress_stdout_stderr(disable=False)


def _quantize(source: Path, target: Path) -> None:
    from llama_cpp import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q8_0
    params.allow_requantize = True
    params.nthread = os.cpu_count() or 1
    with _quiet():
        failed = llama_cpp.llama_model_quantize(
            str(source).encode(), str(target).encode(), ctypes.byref(params)
        )
    if failed or not target.exists():
        raise RuntimeError(f"llama.cpp could not re-quantize {source} (code {failed})")
