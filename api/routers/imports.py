"""Bulk catalog imports: upload a file or name one inside the import root; poll the job. Admin scope."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile, status

from api.deps import ADMIN, ImportCaller, Queue, Service
from api.errors import RATE_LIMITED
from api.schemas import ImportAccepted, ImportFromPath, ImportJobOut
from ingest.celery_app import TaskQueue
from recommender.errors import DependencyUnavailableError, InvalidInputError
from recommender.intake.confinement import resolve_inside
from recommender.intake.feeds.mapping import FieldMapping
from recommender.intake.files import FORMAT_NAMES, detect_format
from recommender.intake.jobs import JobState
from recommender.service import RecommenderService

router = APIRouter(prefix="/imports", tags=["imports"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportAccepted,
    responses={413: {"description": "The upload passed RECO_API__MAX_UPLOAD_MEGABYTES."}, **RATE_LIMITED},
)
def upload(
    request: Request,
    service: Service,
    queue: Queue,
    _caller: ImportCaller,
    file: Annotated[
        UploadFile,
        File(
            description="A catalog: .csv/.tsv, .jsonl, .parquet, a Google Merchant feed, or a Shopify export."
        ),
    ],
    format: Annotated[
        str | None, Form(description=f"One of {FORMAT_NAMES}; told from the file if unset.")
    ] = None,
    mapping: Annotated[
        str | None,
        Form(description='Field mapping as JSON, e.g. {"id": "product_id", "Body (HTML)": "description"}.'),
    ] = None,
) -> ImportAccepted:
    """Upload a catalog file; returns a job id at once while the import runs in the background.

    The body is capped while it streams in (413); the stored file is deleted when its job ends."""
    field_mapping = _parse_mapping(mapping)
    suffix = Path(file.filename or "upload").suffix.lower()
    detect_format(Path(file.filename or "upload"), format)  # an unknown kind is refused before saving
    upload_dir = Path(service.settings.api.upload_dir)
    upload_dir.mkdir(parents=True, exist_ok=True)
    target = upload_dir / f"{uuid.uuid4().hex}{suffix}"
    try:
        with target.open("wb") as handle:
            shutil.copyfileobj(file.file, handle, length=1024 * 1024)
        file_format = detect_format(target, format)  # now the header can tell a Shopify or Merchant export
        source = (file.filename or target.name)[:200]
        return _start(request, service, queue, target, file_format.value, source, True, field_mapping)
    except Exception:
        # Refused, or its job could not be recorded or queued: nothing will ever read or delete the file.
        target.unlink(missing_ok=True)
        raise


def _parse_mapping(text: str | None) -> FieldMapping:
    if not text:
        return FieldMapping()
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInputError(f"mapping is not JSON: {error.msg}", field="mapping") from error
    if not isinstance(loaded, dict) or not all(isinstance(value, str) for value in loaded.values()):
        raise InvalidInputError("mapping must be a JSON object of column -> field", field="mapping")
    return FieldMapping({str(name): value for name, value in loaded.items()})


@router.post(
    "/from-path",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportAccepted,
    responses={403: {"description": "Server-path imports are off."}, **RATE_LIMITED},
)
def from_path(
    body: ImportFromPath, request: Request, service: Service, queue: Queue, _caller: ImportCaller
) -> ImportAccepted:
    """Import a file inside RECO_API__IMPORT_ROOT (off unless RECO_API__ALLOW_SERVER_PATHS is true)."""
    api_settings = service.settings.api
    if not api_settings.allow_server_paths or api_settings.import_root is None:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="imports from server paths are off (RECO_API__ALLOW_SERVER_PATHS, RECO_API__IMPORT_ROOT)",
        )
    # Where the file is is settled first: a path outside the root gets the answer a missing one gets.
    path = resolve_inside(Path(api_settings.import_root), body.path)
    file_format = detect_format(path, body.format)
    field_mapping = FieldMapping(body.mapping or {})
    return _start(request, service, queue, path, file_format.value, body.path[:200], False, field_mapping)


@router.get("/{job_id}", response_model=ImportJobOut, dependencies=[ADMIN])
def get_job(job_id: str, service: Service) -> ImportJobOut:
    return ImportJobOut.from_job(service.jobs.get(job_id))


def _start(
    request: Request,
    service: RecommenderService,
    queue: TaskQueue,
    path: Path,
    file_format: str,
    source: str,
    owns_file: bool,
    mapping: FieldMapping,
) -> ImportAccepted:
    job = service.jobs.create(
        source, file_format, path=str(path), owns_file=owns_file, mapping=mapping.as_json()
    )
    try:
        queue.import_catalog(job.job_id, str(path), file_format, mapping.as_json())
    except DependencyUnavailableError as error:
        service.jobs.finish(job.job_id, JobState.FAILED, f"could not enqueue: {error.reason}")
        if owns_file:
            path.unlink(missing_ok=True)
        raise
    return ImportAccepted(
        job_id=job.job_id,
        state=job.state.value,
        status_url=str(request.url_for("get_job", job_id=job.job_id)),
    )
