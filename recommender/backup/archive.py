"""``recommender backup PATH`` and ``recommender restore PATH``: one folder holds the whole installation.

    PATH/manifest.json        what is in it: release, schema revision, embedding model, counts, checksums
    PATH/vectors/<name>.msgpack   each collection's points (``vectors.py``)
    PATH/tables/<name>.jsonl      each event-store table (``tables.py``)
    PATH/models/                  the published model versions, as the registry keeps them

A restore checks every file's checksum and that the configured embedding model built the vectors before it
writes anything, and writes only into an empty installation unless told to replace it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Table, select

from recommender.backup.tables import delete_tenant_rows, dump_tables, load_tables
from recommender.backup.vectors import dump_collection, load_collection
from recommender.database import DEFAULT_TENANT, Base, schema
from recommender.errors import RecommenderError
from recommender.service import RecommenderService
from recommender.store.base import VectorStore

FORMAT = 1
MANIFEST = "manifest.json"


class BackupError(RecommenderError):
    """A backup that cannot be written or restored here, with the reason."""


@dataclass
class Manifest:
    format: int
    created_at: str
    release: str
    schema_revision: str | None
    embedding_model: str
    dimension: int
    tenant: str = DEFAULT_TENANT
    collections: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    seconds: float = 0.0

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        try:
            data = json.loads((folder / MANIFEST).read_text())
        except FileNotFoundError as error:
            raise BackupError(f"{folder} holds no backup: {MANIFEST} is missing") from error
        if data.get("format") != FORMAT:
            raise BackupError(
                f"backup format {data.get('format')!r} is not one this release reads ({FORMAT})"
            )
        return cls(**data)


def create_backup(service: RecommenderService, folder: Path) -> Manifest:
    """Writes the installation into ``folder`` (new or empty). The event store is read as one snapshot;
    with the service running on a Qdrant server, writes during the backup may reach one part and not the
    other (the embedded store cannot be open in two processes, so there the service is stopped)."""
    started = time.perf_counter()
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        raise BackupError(f"{folder} is not empty: a backup goes into a new folder")
    for part in ("vectors", "tables", "models"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    service.database.run(lambda session: None)  # the schema at this release's revision
    manifest = Manifest(
        format=FORMAT,
        created_at=datetime.now(UTC).isoformat(),
        release=_release(),
        schema_revision=schema.current_revision(service.database.engine),
        embedding_model=service.embedder.model_name,
        dimension=service.embedder.dimension,
        tenant=service.tenant,
    )
    for role, store in _collections(service).items():
        path = folder / "vectors" / f"{role}.msgpack"
        count = dump_collection(store, path)
        manifest.collections[role] = {
            "name": store.spec.name,
            "points": count,
            "vectors": [store.spec.vector_name, *(name for name, _ in store.spec.extra_vectors)],
            "sha256": _digest(path),
        }
    for name, rows in dump_tables(service.database.engine, folder / "tables", service.tenant).items():
        manifest.tables[name] = {"rows": rows, "sha256": _digest(folder / "tables" / f"{name}.jsonl")}
    models = Path(service.settings.collab.models_path)
    if models.exists():
        shutil.copytree(models, folder / "models", dirs_exist_ok=True)
    manifest.models = {
        str(path.relative_to(folder / "models")): _digest(path)
        for path in sorted((folder / "models").rglob("*"))
        if path.is_file()
    }
    manifest.seconds = round(time.perf_counter() - started, 3)
    (folder / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2) + "\n")
    return manifest


def restore_backup(service: RecommenderService, folder: Path, replace: bool = False) -> Manifest:
    """Writes a backup into this installation: empty, or emptied first when ``replace``."""
    folder = Path(folder)
    manifest = Manifest.read(folder)
    _verify(manifest, folder, service)
    collections = _collections(service)
    occupied = [role for role, store in collections.items() if store.count() > 0]
    if service.events.count() > 0:
        occupied.append("events")
    if occupied and not replace:
        raise BackupError(
            f"this installation is not empty ({', '.join(occupied)}): restore into an empty one, "
            "or pass --replace to delete what it holds first"
        )
    for role, store in collections.items():
        if replace:
            store.delete([point.point_id for point in _all_points(store)])
        load_collection(store, folder / "vectors" / f"{role}.msgpack")
        store.optimize()
    _restore_tables(service, manifest, folder)
    models = Path(service.settings.collab.models_path)
    if models.exists():
        shutil.rmtree(models)
    shutil.copytree(folder / "models", models)
    return manifest


def _restore_tables(service: RecommenderService, manifest: Manifest, folder: Path) -> None:
    """A backup of this release's schema: the tenant's rows are replaced by the backup's, in one
    transaction. An older schema: the (empty) tables are made again at the backup's revision, filled, then
    migrated to this release's."""
    engine = service.database.engine
    tables = list(manifest.tables)
    if manifest.schema_revision == schema.head_revision():
        with engine.begin() as connection:
            delete_tenant_rows(connection, tables, service.tenant)
            load_tables(connection, folder / "tables", tables, service.tenant)
        return
    with engine.begin() as connection:
        holding = [table.name for table in Base.metadata.sorted_tables if _has_rows(connection, table)]
        if holding:
            raise BackupError(
                f"the backup's schema is revision {manifest.schema_revision}, this release's "
                f"{schema.head_revision()}: it restores only into an empty event store (this one holds rows "
                f"in {', '.join(holding)}); restore it with the release that made it, or into a new database"
            )
        Base.metadata.drop_all(connection)
        connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")
    schema.upgrade(engine, manifest.schema_revision or "head")
    with engine.begin() as connection:
        load_tables(connection, folder / "tables", tables, service.tenant)
    schema.upgrade(engine)


def _has_rows(connection: Connection, table: Table) -> bool:
    return connection.execute(select(table).limit(1)).first() is not None


def _verify(manifest: Manifest, folder: Path, service: RecommenderService) -> None:
    if (manifest.embedding_model, manifest.dimension) != (
        service.embedder.model_name,
        service.embedder.dimension,
    ):
        raise BackupError(
            f"the backup's vectors were made by {manifest.embedding_model!r} "
            f"(dimension {manifest.dimension}), "
            f"but this installation is configured with {service.embedder.model_name!r} "
            f"(dimension {service.embedder.dimension}): configure that model to restore it"
        )
    collections = _collections(service)
    for role, entry in manifest.collections.items():
        expected = [collections[role].spec.vector_name, *(n for n, _ in collections[role].spec.extra_vectors)]
        if entry["vectors"] != expected:
            raise BackupError(
                f"the backup's {role} collection has the vectors {entry['vectors']}, this configuration "
                f"{expected} (another sequence-model size or cross-lingual model?)"
            )
    files = {f"vectors/{role}.msgpack": entry["sha256"] for role, entry in manifest.collections.items()}
    files |= {f"tables/{name}.jsonl": entry["sha256"] for name, entry in manifest.tables.items()}
    files |= {f"models/{name}": digest for name, digest in manifest.models.items()}
    for relative, digest in files.items():
        path = folder / relative
        if not path.is_file():
            raise BackupError(f"the backup is incomplete: {relative} is missing")
        if _digest(path) != digest:
            raise BackupError(f"the backup is damaged: {relative} does not match its checksum")
    if manifest.schema_revision is not None:
        try:
            schema.check_known(manifest.schema_revision)
        except RecommenderError as error:
            raise BackupError(f"the backup was made by a newer release: {error}") from error


def _collections(service: RecommenderService) -> dict[str, VectorStore]:
    return {"products": service.products, "users": service.users}


def _all_points(store: VectorStore) -> list[Any]:
    points, offset = [], None
    while True:
        page, offset = store.scroll(1000, offset)
        points.extend(page)
        if offset is None or not page:
            return points


def _digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _release() -> str:
    try:
        return version("semantic-recommender")
    except PackageNotFoundError:
        return "unknown"
