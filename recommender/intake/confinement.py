"""Server-path imports read inside one folder only: resolved paths, no `..`, no symlinks leading out."""

from __future__ import annotations

from pathlib import Path

from recommender.errors import NotFoundError


def resolve_inside(root: Path, requested: str) -> Path:
    """The file ``requested`` names inside ``root`` (relative to it, or absolute within it).

    A path that is missing, outside the root, or a folder gets the same answer, so that a caller learns
    nothing about the disk beyond the root.
    """
    refused = NotFoundError("importable file", "(no such file inside the import root)")
    try:
        base = root.resolve(strict=True)
        candidate = Path(requested)
        if "\x00" in requested or ".." in candidate.parts:
            raise refused
        resolved = (candidate if candidate.is_absolute() else base / candidate).resolve(strict=True)
    except (OSError, RuntimeError, ValueError):
        raise refused from None
    # resolve() has followed every symlink: what is checked is where the file really is.
    if not resolved.is_relative_to(base) or not resolved.is_file():
        raise refused
    return resolved
