"""An experiment's report: per arm, the lists served and what shoppers did with them, with 95% intervals,
and each arm's difference to the control arm.

Per list: clicked (a click attributed to it), converted (a purchase attributed to it), revenue (each
attributed purchase's value when the event carries one, else the product's price). Rates are per list:
click-through = lists clicked / lists, conversion = lists converted / lists. Intervals: Wilson's for a
rate, the normal approximation for a difference of rates and for revenue per 1,000 lists.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pydantic import BaseModel, Field, computed_field

from recommender.events import AttributedEvent
from recommender.models import EventType
from recommender.online.experiments import Experiment
from recommender.online.served import ServedList

Z95 = 1.959963984540054


class Estimate(BaseModel):
    value: float
    ci: tuple[float, float] | None = Field(description="None while an arm has too few lists to tell.")

    def shown(self, digits: int = 4) -> str:
        """``+0.0123 [-0.0050, +0.0296]``, or the value and "n/a" while there is no interval."""
        if self.ci is None:
            return f"{self.value:+.{digits}f} [n/a]"
        return f"{self.value:+.{digits}f} [{self.ci[0]:+.{digits}f}, {self.ci[1]:+.{digits}f}]"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def significant(self) -> bool:
        """The interval (of a difference) excludes 0."""
        return self.ci is not None and (self.ci[0] > 0 or self.ci[1] < 0)


class ArmReport(BaseModel):
    arm: str
    lists: int
    clicks: int
    ctr: float
    ctr_ci: tuple[float, float]
    conversions: int
    conversion: float
    conversion_ci: tuple[float, float]
    revenue: float
    revenue_per_1000: float
    revenue_per_1000_ci: tuple[float, float]
    difference: dict[str, Estimate] | None = None  # against the control arm; None for the control


class ExperimentReport(BaseModel):
    """What `GET /experiments/{name}/report` answers."""

    experiment: str
    state: str
    control: str
    arms: list[ArmReport]
    attribution: dict[str, int] = Field(default_factory=dict)  # events by rule: explicit, last_touch


@dataclass
class _ListOutcome:
    clicked: bool = False
    converted: bool = False
    revenue: float = 0.0


def experiment_report(
    experiment: Experiment,
    lists: Sequence[ServedList],
    events: Sequence[AttributedEvent],
    price_of: Callable[[list[str]], dict[str, float]],
) -> ExperimentReport:
    outcomes = {served.recommendation_id: _ListOutcome() for served in lists}
    bought = [event.product_id for event in events if event.event_type is EventType.PURCHASE]
    prices = price_of(sorted(set(bought))) if bought else {}
    attribution: dict[str, int] = {}
    for event in events:
        outcome = outcomes.get(event.recommendation_id)
        if outcome is None:
            continue
        attribution[event.attribution] = attribution.get(event.attribution, 0) + 1
        if event.event_type is EventType.CLICK:
            outcome.clicked = True
        elif event.event_type is EventType.PURCHASE:
            outcome.converted = True
            outcome.revenue += event.value if event.value is not None else prices.get(event.product_id, 0.0)
    by_arm: dict[str, list[_ListOutcome]] = {arm: [] for arm in experiment.arms}
    for served in lists:
        if served.arm in by_arm:
            by_arm[served.arm].append(outcomes[served.recommendation_id])
    reports = {arm: _arm_report(arm, outcomes) for arm, outcomes in by_arm.items()}
    control = reports[experiment.control]
    for arm, report in reports.items():
        if arm != experiment.control:
            report.difference = {
                "ctr": _rate_difference(report.clicks, report.lists, control.clicks, control.lists),
                "conversion": _rate_difference(
                    report.conversions, report.lists, control.conversions, control.lists
                ),
                "revenue_per_1000": _mean_difference(by_arm[arm], by_arm[experiment.control]),
            }
    return ExperimentReport(
        experiment=experiment.name,
        state=experiment.state.value,
        control=experiment.control,
        arms=list(reports.values()),
        attribution=attribution,
    )


def _arm_report(arm: str, outcomes: list[_ListOutcome]) -> ArmReport:
    lists = len(outcomes)
    clicks = sum(outcome.clicked for outcome in outcomes)
    conversions = sum(outcome.converted for outcome in outcomes)
    revenue = [outcome.revenue for outcome in outcomes]
    mean, low, high = _mean_interval(revenue)
    return ArmReport(
        arm=arm,
        lists=lists,
        clicks=clicks,
        ctr=clicks / lists if lists else 0.0,
        ctr_ci=wilson(clicks, lists),
        conversions=conversions,
        conversion=conversions / lists if lists else 0.0,
        conversion_ci=wilson(conversions, lists),
        revenue=sum(revenue),
        revenue_per_1000=mean * 1000,
        revenue_per_1000_ci=(low * 1000, high * 1000),
    )


def wilson(successes: int, trials: int) -> tuple[float, float]:
    if trials == 0:
        return (0.0, 1.0)
    rate = successes / trials
    denominator = 1 + Z95**2 / trials
    centre = (rate + Z95**2 / (2 * trials)) / denominator
    half = Z95 * math.sqrt(rate * (1 - rate) / trials + Z95**2 / (4 * trials**2)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def _rate_difference(successes: int, trials: int, control_successes: int, control_trials: int) -> Estimate:
    if not trials or not control_trials:
        return Estimate(value=0.0, ci=None)
    rate, control = successes / trials, control_successes / control_trials
    spread = math.sqrt(rate * (1 - rate) / trials + control * (1 - control) / control_trials)
    difference = rate - control
    return Estimate(value=difference, ci=(difference - Z95 * spread, difference + Z95 * spread))


def _mean_interval(values: list[float]) -> tuple[float, float, float]:
    if not values:
        return 0.0, 0.0, 0.0
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, mean, mean
    variance = sum((value - mean) ** 2 for value in values) / (len(values) - 1)
    half = Z95 * math.sqrt(variance / len(values))
    return mean, mean - half, mean + half


def _mean_difference(arm: list[_ListOutcome], control: list[_ListOutcome]) -> Estimate:
    if len(arm) < 2 or len(control) < 2:
        return Estimate(value=0.0, ci=None)

    def stats(outcomes: list[_ListOutcome]) -> tuple[float, float]:
        values = [outcome.revenue for outcome in outcomes]
        mean = sum(values) / len(values)
        return mean, sum((value - mean) ** 2 for value in values) / (len(values) - 1)

    (mean, variance), (control_mean, control_variance) = stats(arm), stats(control)
    spread = math.sqrt(variance / len(arm) + control_variance / len(control)) * 1000
    difference = (mean - control_mean) * 1000
    return Estimate(value=difference, ci=(difference - Z95 * spread, difference + Z95 * spread))
