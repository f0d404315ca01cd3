"""What ships is what is tested: the wheel built from this checkout, installed outside it, renders every
prompt, loads the demo catalog and serves the web page (the Dockerfile installs the same wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import pytest

from tests.live_service import ROOT, live_service

pytestmark = pytest.mark.slow

PROMPTS = ("system", "rerank", "explain", "chat")

INSTALLED_CHECK = """
import sys
from pathlib import Path
import api, cli, recommender, ingest
site = Path(sys.argv[1]).resolve()
for module in (api, cli, recommender, ingest):
    assert site in Path(module.__file__).resolve().parents, (module.__name__, module.__file__)
from recommender.llm.prompting import PROMPT_NAMES, check_templates, render, template
check_templates()
for name in PROMPT_NAMES:
    fields = {field: f"<{field}>" for field in template(name).get_identifiers()}
    text = render(name, **fields)
    assert len(text) > 40 and "$" not in text, name
    print("prompt", name, len(text))
from recommender.demo import demo_catalog_path
print("demo products", len(demo_catalog_path().read_text().splitlines()))
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, installed without dependencies into a folder outside the checkout (the dependencies come
    from this environment, as they would from the image's)."""
    work = tmp_path_factory.mktemp("wheel")
    # What the Dockerfile copies, built in a copy (an in-tree build would leave build/ in the checkout,
    # whose stale files a later build would ship).
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for package in ("recommender", "ingest", "api", "cli"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            work,
            source,
        ],
        check=True,
        cwd=work,
    )
    (wheel,) = work.glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"recommender/llm/prompts/{name}.txt" for name in PROMPTS} <= names
    site = work / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", site, wheel], check=True
    )
    return site


def test_the_installed_wheel_renders_every_prompt_and_holds_the_demo_catalog(installed: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", INSTALLED_CHECK, installed],
        cwd=installed.parent,
        env={"PYTHONPATH": str(installed), "HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert len([line for line in result.stdout.splitlines() if line.startswith("prompt")]) == len(PROMPTS)
    assert "demo products 60" in result.stdout


def test_the_installed_wheel_serves_the_demo_and_its_web_page(installed: Path, tmp_path: Path) -> None:
    port = 8931
    with live_service(tmp_path, port, command="demo", cwd=installed.parent, PYTHONPATH=str(installed)):
        base = f"http://127.0.0.1:{port}"
        page = httpx.get(f"{base}/ui/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        for asset in ("app.js", "style.css"):
            assert httpx.get(f"{base}/ui/{asset}", timeout=10).status_code == 200, asset
        listed = httpx.get(f"{base}/users/demo-runner/recommendations", params={"k": 3}, timeout=30)
        assert listed.status_code == 200 and len(listed.json()["items"]) == 3
