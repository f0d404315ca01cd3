"""``recommender experiments``: the A/B experiments of a tenant, and their reports (what
`GET /experiments/{name}/report` answers)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from recommender.online.experiments import ExperimentState
from recommender.service import RecommenderService, build_service
from recommender.settings import DEFAULT_TENANT, get_settings

experiments_app = typer.Typer(help="A/B experiments: list, report, stop.", no_args_is_help=True)
console = Console()
TenantFlag = Annotated[str, typer.Option("--tenant", help="The tenant (shop).")]


def _service(tenant: str) -> RecommenderService:
    return build_service(get_settings(), tenant=tenant)


@experiments_app.command("list")
def list_experiments(tenant: TenantFlag = DEFAULT_TENANT) -> None:
    """Every experiment: name, placement, arms and shares, state."""
    service = _service(tenant)
    try:
        experiments = service.loop.experiments.all()
    finally:
        service.close()
    table = Table("name", "placement", "arms (traffic %)", "state", "created")
    for experiment in experiments:
        arms = ", ".join(f"{arm} ({experiment.traffic[arm]:g})" for arm in experiment.arms)
        created = experiment.created_at.isoformat(timespec="minutes") if experiment.created_at else "-"
        table.add_row(experiment.name, experiment.placement or "(all)", arms, experiment.state.value, created)
    console.print(table)


@experiments_app.command()
def report(name: str, tenant: TenantFlag = DEFAULT_TENANT) -> None:
    """Per arm: lists, click-through, conversion, revenue per 1,000 lists (95% intervals), against control."""
    service = _service(tenant)
    try:
        result = service.loop.report(name)
    finally:
        service.close()
    table = Table(title=f"{result.experiment} ({result.state}); control: {result.control}")
    for column in ("arm", "lists", "CTR [95% CI]", "conversion [95% CI]", "revenue / 1000", "CTR vs control"):
        table.add_column(column)
    for arm in result.arms:
        versus = "-"
        if arm.difference is not None:
            ctr = arm.difference["ctr"]
            mark = " *" if ctr.significant else ""
            versus = f"{ctr.shown()}{mark}"
        table.add_row(
            arm.arm,
            str(arm.lists),
            f"{arm.ctr:.4f} [{arm.ctr_ci[0]:.4f}, {arm.ctr_ci[1]:.4f}]",
            f"{arm.conversion:.4f} [{arm.conversion_ci[0]:.4f}, {arm.conversion_ci[1]:.4f}]",
            f"{arm.revenue_per_1000:.1f}",
            versus,
        )
    console.print(table)
    console.print(
        f"attributed events by rule: {result.attribution or 'none yet'}  (* : the interval excludes 0)"
    )


@experiments_app.command()
def stop(name: str, tenant: TenantFlag = DEFAULT_TENANT) -> None:
    """Stop assigning users to the experiment's arms; its report stays."""
    service = _service(tenant)
    try:
        service.loop.experiments.set_state(name, ExperimentState.STOPPED)
    finally:
        service.close()
    console.print(f"stopped {name}")
