"""The real service in its own process on a loopback port, for tests that need a server as clients see it
(fuzzing, faults, the browser)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def service_environment(root: Path, **settings: str) -> dict[str, str]:
    """This process's environment without its RECO_ settings, stores under ``root``, plus ``settings``."""
    base = {name: value for name, value in os.environ.items() if not name.startswith("RECO_")}
    return {
        **base,
        "HF_HUB_OFFLINE": "1",
        "RECO_QDRANT__PATH": str(root / "qdrant"),
        "RECO_EVENTS__URL": f"sqlite:///{root / 'events.db'}",
        "RECO_API__UPLOAD_DIR": str(root / "uploads"),
        "RECO_COLLAB__MODELS_PATH": str(root / "models"),
        **settings,
    }


@contextmanager
def live_service(
    root: Path, port: int, command: str = "serve", timeout: float = 180, cwd: Path = ROOT, **settings: str
) -> Iterator[subprocess.Popen]:
    """``recommender COMMAND --port PORT`` until it answers /health; stopped on exit (if still alive).
    Its output goes to ``root/server-PORT.log``, quoted when it does not start. ``cwd`` outside the checkout
    (with PYTHONPATH among ``settings``) runs an installed copy instead of the checkout."""
    log_path = root / f"server-{port}.log"
    with log_path.open("a") as log:
        process = subprocess.Popen(
            [sys.executable, "-c", "from cli.main import main; main()", command, "--port", str(port)],
            env=service_environment(root, **settings),
            cwd=cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError("the service did not start: " + log_path.read_text()[-3000:])
            time.sleep(0.3)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(30)
