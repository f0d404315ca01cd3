"""The last `recommender eval` report (RECO_EVAL__REPORT_DIR): its tables and plots."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse
from pydantic import BaseModel

from api.deps import READ, Service
from recommender.evaluation.stored_report import load_report, plot_path

router = APIRouter(prefix="/evaluation", tags=["evaluation"], dependencies=[READ])


class ReportOut(BaseModel):
    tables: dict[str, dict[str, dict[str, Any]]]
    plots: list[str]


@router.get("/report", response_model=ReportOut)
def report(service: Service) -> ReportOut:
    """Metrics by split and method, and the plot file names; 404 when no report is configured."""
    return ReportOut.model_validate(load_report(service.settings.eval.report_dir))


@router.get("/plots/{name}", response_class=FileResponse, responses={200: {"content": {"image/png": {}}}})
def plot(name: str, service: Service) -> FileResponse:
    return FileResponse(plot_path(service.settings.eval.report_dir, name), media_type="image/png")
