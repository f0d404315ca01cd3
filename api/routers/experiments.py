"""A/B experiments between pipeline configurations (admin scope), and their reports."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import ADMIN, Service
from recommender.online.experiments import Experiment, ExperimentIn, ExperimentState
from recommender.online.report import ExperimentReport

router = APIRouter(prefix="/experiments", tags=["experiments"], dependencies=[ADMIN])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Experiment,
    responses={409: {"description": "The name is taken, or another experiment runs on the placement."}},
)
def create(experiment: ExperimentIn, service: Service) -> Experiment:
    """Users are split by a stable hash of (experiment, user id) in the traffic shares."""
    service.loop.start_experiment(experiment)
    return service.loop.experiments.get(experiment.name)


@router.get("", response_model=list[Experiment])
def list_experiments(service: Service) -> list[Experiment]:
    return service.loop.experiments.all()


@router.get("/{name}", response_model=Experiment)
def get(name: str, service: Service) -> Experiment:
    return service.loop.experiments.get(name)


@router.post("/{name}/stop", response_model=Experiment)
def stop(name: str, service: Service) -> Experiment:
    """Stop assigning users (every list is the served configuration's again); the report stays."""
    return service.loop.experiments.set_state(name, ExperimentState.STOPPED)


@router.post("/{name}/archive", response_model=Experiment)
def archive(name: str, service: Service) -> Experiment:
    return service.loop.experiments.set_state(name, ExperimentState.ARCHIVED)


@router.get("/{name}/report", response_model=ExperimentReport)
def report(name: str, service: Service) -> ExperimentReport:
    """Per arm: lists, click-through and conversion per list, revenue per 1,000 lists, 95% intervals, and
    each arm's difference to the control arm (its interval, and whether it excludes 0)."""
    return service.loop.report(name)
