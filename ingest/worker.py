"""Entry point for separate worker processes: ``celery -A ingest.worker worker``.

Separate workers need a Qdrant server (RECO_QDRANT__URL): an embedded store belongs to one process.
"""

from __future__ import annotations

from ingest.celery_app import create_celery_app
from recommender.settings import get_settings

app = create_celery_app(get_settings().celery)
