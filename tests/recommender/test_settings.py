import pytest
from pydantic import ValidationError

from recommender.settings import Settings, get_settings


def test_nested_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECO_RECOMMEND__HALF_LIFE_DAYS", "7")
    monkeypatch.setenv("RECO_EMBEDDING__BATCH_SIZE", "16")
    settings = get_settings()
    assert settings.recommend.half_life_days == 7 and settings.embedding.batch_size == 16


def test_conventional_names_fill_in_and_prefixed_names_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QDRANT_URL", "http://qdrant:6333")
    monkeypatch.setenv("CELERY_BROKER_URL", "redis://redis:6379/0")
    monkeypatch.setenv("RECO_CELERY__BROKER_URL", "redis://other:6379/0")
    settings = get_settings()
    assert settings.qdrant.url == "http://qdrant:6333"
    assert settings.celery.broker_url == "redis://other:6379/0"


def test_bad_configuration_fails_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValidationError):
        Settings(recommend={"event_weights": {"like": 1.0}})
    monkeypatch.setenv("RECO_QDRANT__ON_MODEL_CHANGE", "sometimes")
    with pytest.raises(ValidationError):
        get_settings()


def test_a_tenant_has_its_own_stores_folders_and_overrides(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(
        collab={"models_path": tmp_path / "models"},
        tenants={
            "overrides": {"shop-a": {"pipeline": {"diversity": "mmr"}, "recommend": {"half_life_days": 7}}}
        },
    )
    shop = settings.for_tenant("shop-a")
    assert shop.qdrant.collection_prefix == "reco_tenant_shop-a"
    assert shop.collab.models_path == tmp_path / "tenants" / "shop-a" / "models"
    assert (shop.pipeline.diversity, shop.recommend.half_life_days) == ("mmr", 7)
    assert settings.pipeline.diversity == "none"
    implicit = settings.for_tenant("default")
    assert (implicit.qdrant.collection_prefix, implicit.collab.models_path) == ("reco", tmp_path / "models")


def test_bad_tenant_settings_are_refused_with_the_reason() -> None:
    with pytest.raises(ValueError, match="tenants.overrides.shop-a: pipeline.diversity"):
        Settings(tenants={"overrides": {"shop-a": {"pipeline": {"diversity": "sideways"}}}})
    with pytest.raises(ValueError, match="cannot differ per tenant"):
        Settings(tenants={"overrides": {"shop-a": {"qdrant": {"url": "http://elsewhere"}}}})
    with pytest.raises(ValueError, match="pattern"):
        Settings(api={"keys": {"k" * 16: {"scopes": ["read"], "tenant": "Shop A"}}})
