"""The house rules that tools can check: ruff on everything, mypy on the core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True, text=True)


def test_ruff_finds_nothing() -> None:
    result = run("ruff", "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_passes_on_the_core() -> None:
    result = run("mypy", "recommender")
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_layers_hold_and_the_core_has_no_import_cycle() -> None:
    """pyproject.toml's import-linter contracts: core <- ingest <- api <- cli, the core without FastAPI or
    Celery, and no two modules or folders of the core importing each other (function-level imports
    included)."""
    result = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "3 kept, 0 broken" in result.stdout
