"""Backup and restore through the real service: back up, wipe, restore, and the same lists come back; a
damaged, foreign or misplaced backup is refused before anything is written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from cli.main import app as cli
from recommender.backup import BackupError, create_backup, restore_backup
from recommender.demo import demo_events
from recommender.llm.conversation_store import Conversation, ConversationStore, Turn
from recommender.models import InteractionEvent
from recommender.service import RecommenderService, build_service
from recommender.settings import Settings
from recommender.tenancy import TenantServices
from tests.conftest import LOOPBACK, import_demo_catalog, make_settings
from tests.postgres import fresh_postgres_database
from tests.recommender.training.test_training_job import COLLAB, SMALL_MODEL, journey_events

USERS = [f"shopper-{number}" for number in range(100)]


def top_tens(service: RecommenderService) -> dict[str, list[str]]:
    with TestClient(create_app(service.settings, service), client=LOOPBACK) as client:
        lists = {}
        for user in USERS:
            answer = client.get(f"/users/{user}/recommendations", params={"k": 10})
            assert answer.status_code == 200, answer.text
            lists[user] = [item["product_id"] for item in answer.json()["items"]]
        return lists


def settings_for(root: Path, backend: str, **sections: dict) -> Settings:
    return make_settings(
        root, backend, collab={**COLLAB, "models_path": root / "models"}, experimental=SMALL_MODEL, **sections
    )


def wipe(root: Path) -> None:
    for part in ("qdrant", "models", "events.db", "events.db-wal", "events.db-shm"):
        path = root / part
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def test_backup_wipe_restore_gives_back_the_same_lists_for_100_users(
    tmp_path: Path, embedder, backend: str
) -> None:
    root = tmp_path / "shop"
    settings = settings_for(root, backend)
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    service.events.add(journey_events(users=len(USERS)))
    service.profiles.refresh(USERS)
    report = service.train()
    ConversationStore(service.database, 600).save(
        "conversation-1", Conversation("caller", "shopper-1", [Turn("user", "why?")])
    )
    before = top_tens(service)
    assert report.ranker and len({tuple(items) for items in before.values()}) > 1
    manifest = create_backup(service, tmp_path / "backup")
    service.close()
    assert manifest.collections["products"]["points"] == 60
    assert manifest.collections["users"]["points"] == len(USERS)
    assert manifest.tables["interaction_events"]["rows"] == len(journey_events(users=len(USERS)))
    assert any(name.endswith("meta.json") for name in manifest.models)

    wipe(root)
    if backend == "server":
        settings = settings_for(root, backend)  # qdrant-client's :memory: starts empty with a new client
    restored = build_service(settings, embedder=embedder)
    assert restored.catalog.count() == 0 and restored.events.count() == 0
    restore_backup(restored, tmp_path / "backup")
    assert restored.models.current().version == report.version
    after = top_tens(restored)
    assert after == before
    conversation = ConversationStore(restored.database, 600).load("conversation-1")
    assert conversation is not None and conversation.user_id == "shopper-1"
    # The restored store takes new events after the old ones.
    restored.events.add([InteractionEvent(user_id="shopper-1", product_id="run-001", type="view")])
    assert restored.events.history("shopper-1", 1)[0].product_id == "run-001"
    restored.close()


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_refusals_leave_the_installation_untouched(tmp_path: Path, embedder, backend: str) -> None:
    source = build_service(make_settings(tmp_path / "a", backend), embedder=embedder)
    import_demo_catalog(source)
    create_backup(source, tmp_path / "backup")
    with pytest.raises(BackupError, match="not empty: a backup goes into a new folder"):
        create_backup(source, tmp_path / "backup")
    with pytest.raises(BackupError, match="not empty \\(products\\)"):
        restore_backup(source, tmp_path / "backup")
    source.close()

    target = build_service(make_settings(tmp_path / "b", backend), embedder=embedder)
    damaged = tmp_path / "damaged"
    shutil.copytree(tmp_path / "backup", damaged)
    with (damaged / "vectors" / "products.msgpack").open("r+b") as file:
        file.seek(100)
        file.write(b"\x00\x01")
    with pytest.raises(BackupError, match="vectors/products.msgpack does not match its checksum"):
        restore_backup(target, damaged)
    foreign = tmp_path / "foreign"
    shutil.copytree(tmp_path / "backup", foreign)
    manifest = json.loads((foreign / "manifest.json").read_text())
    manifest["embedding_model"] = "another-model"
    (foreign / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="made by 'another-model'"):
        restore_backup(target, foreign)
    with pytest.raises(BackupError, match="holds no backup"):
        restore_backup(target, tmp_path / "a")
    assert target.catalog.count() == 0 and target.events.count() == 0
    restore_backup(target, tmp_path / "backup")
    assert target.catalog.count() == 60
    target.close()


@pytest.mark.postgres
@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_sqlite_backup_restores_into_postgresql(tmp_path: Path, embedder, backend: str) -> None:
    source = build_service(make_settings(tmp_path / "a", backend), embedder=embedder)
    import_demo_catalog(source)
    source.events.add(demo_events())
    expected = [(event.user_id, event.product_id) for event in source.events.all_events()]
    create_backup(source, tmp_path / "backup")
    source.close()
    with fresh_postgres_database() as url:
        target = build_service(make_settings(tmp_path / "b", backend, events={"url": url}), embedder=embedder)
        restore_backup(target, tmp_path / "backup")
        assert [(event.user_id, event.product_id) for event in target.events.all_events()] == expected
        target.events.add([InteractionEvent(user_id="after", product_id="run-001", type="view")])
        assert target.events.count() == len(expected) + 1
        target.close()


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_the_commands_back_up_and_restore_the_demo(
    tmp_path: Path, embedder, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "demo"
    settings = make_settings(root, backend)
    service = build_service(settings, embedder=embedder)
    import_demo_catalog(service)
    service.events.add(demo_events())
    events = service.events.count()
    service.close()
    monkeypatch.setenv("RECO_QDRANT__PATH", str(root / "qdrant"))
    monkeypatch.setenv("RECO_EVENTS__URL", settings.events.url)
    monkeypatch.setenv("RECO_COLLAB__MODELS_PATH", str(root / "models"))
    runner = CliRunner()
    backed_up = runner.invoke(cli, ["backup", str(tmp_path / "backup")])
    assert backed_up.exit_code == 0, backed_up.output
    assert "points (products 60, users" in backed_up.output
    wipe(root)
    restored = runner.invoke(cli, ["restore", str(tmp_path / "backup")])
    assert restored.exit_code == 0, restored.output
    again = runner.invoke(cli, ["restore", str(tmp_path / "backup")])
    assert again.exit_code != 0 and "pass --replace" in str(again.exception)
    replaced = runner.invoke(cli, ["restore", str(tmp_path / "backup"), "--replace"])
    assert replaced.exit_code == 0, replaced.output
    check = build_service(settings, embedder=embedder)
    assert (check.catalog.count(), check.events.count()) == (60, events)
    check.close()


@pytest.mark.parametrize("backend", ["embedded"], indirect=True)
def test_a_tenant_is_backed_up_and_restored_without_touching_another(
    tmp_path: Path, embedder, backend: str
) -> None:
    settings = make_settings(tmp_path, backend)
    tenants = TenantServices(settings)
    shop_a, shop_b = tenants.get("shop-a"), tenants.get("shop-b")
    for shop in (shop_a, shop_b):
        import_demo_catalog(shop)
    shop_a.events.add(demo_events())
    shop_b.events.add([InteractionEvent(user_id="b-only", product_id="run-001", type="view")])
    manifest = create_backup(shop_a, tmp_path / "backup-a")
    assert manifest.tenant == "shop-a" and manifest.tables["interaction_events"]["rows"] == len(demo_events())

    shop_a.events.add([InteractionEvent(user_id="late", product_id="run-002", type="view")])
    restore_backup(shop_a, tmp_path / "backup-a", replace=True)
    assert shop_a.events.count() == len(demo_events())  # the later event is gone: the backup's state
    assert shop_a.catalog.count() == 60
    assert [event.user_id for event in shop_b.events.all_events()] == ["b-only"]
    assert shop_b.catalog.count() == 60 and tenants.get().events.count() == 0
    tenants.close()
