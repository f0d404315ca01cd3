"""Bulk catalog imports: upload a file or name one on the server; poll the job."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile, status

from api.deps import Queue, Service
from api.schemas import ImportAccepted, ImportFromPath, ImportJobOut
from ingest.celery_app import TaskQueue
from recommender.catalog_files import detect_format
from recommender.errors import DependencyUnavailableError, InvalidInputError
from recommender.jobs import JobState
from recommender.service import RecommenderService

router = APIRouter(prefix="/imports", tags=["imports"])


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=ImportAccepted)
def upload(
    request: Request,
    service: Service,
    queue: Queue,
    file: Annotated[UploadFile, File(description="A .csv, .jsonl or .parquet catalog file.")],
    format: Annotated[str | None, Form()] = None,
) -> ImportAccepted:
    """Upload a catalog file; returns a job id at once while the import runs in the background."""
    file_format = detect_format(Path(file.filename or "upload"), format)
    upload_dir = Path(service.settings.api.upload_dir)
    upload_dir.mkdir(parents=True, exist_ok=True)
    target = upload_dir / f"{uuid.uuid4().hex}.{file_format.value}"
    limit = service.settings.api.max_upload_megabytes * 1024 * 1024
    with target.open("wb") as handle:
        shutil.copyfileobj(file.file, handle, length=1024 * 1024)
    if target.stat().st_size > limit:
        target.unlink()
        raise InvalidInputError(f"the file is larger than {limit // (1024 * 1024)} MB", field="file")
    return _start(request, service, queue, target, file_format.value, source=file.filename or target.name)


@router.post("/from-path", status_code=status.HTTP_202_ACCEPTED, response_model=ImportAccepted)
def from_path(body: ImportFromPath, request: Request, service: Service, queue: Queue) -> ImportAccepted:
    """Import a file already on the server (shared volume). Can be switched off in settings."""
    if not service.settings.api.allow_server_paths:
        raise InvalidInputError("imports from server paths are disabled", field="path")
    path = Path(body.path).expanduser().resolve()
    file_format = detect_format(path, body.format)
    if not path.is_file():
        raise InvalidInputError(f"no such file on the server: {path}", field="path")
    return _start(request, service, queue, path, file_format.value, source=str(path))


@router.get("/{job_id}", response_model=ImportJobOut)
def get_job(job_id: str, service: Service) -> ImportJobOut:
    return ImportJobOut.from_job(service.jobs.get(job_id))


def _start(
    request: Request, service: RecommenderService, queue: TaskQueue, path: Path, file_format: str, source: str
) -> ImportAccepted:
    job = service.jobs.create(source, file_format)
    try:
        queue.import_catalog(job.job_id, str(path), file_format)
    except DependencyUnavailableError as error:
        service.jobs.finish(job.job_id, JobState.FAILED, f"could not enqueue: {error.reason}")
        raise
    return ImportAccepted(
        job_id=job.job_id,
        state=job.state.value,
        status_url=str(request.url_for("get_job", job_id=job.job_id)),
    )
