"""Online experiments without a live shop: held-out histories replayed as shoppers.

The data is split as for ``recommender eval`` (each user's last interaction held out) and replayed into a
temporary real service, which trains. Each held-out user is then a shopper who asks for one list of ``k``
at the moment of their held-out interaction and acts by a stated model:

- they click their held-out next product when the list shows it at position p, with probability
  1 / log2(p + 1) (position bias: 1 at the top, 0.29 at 10), and nothing else;
- a click becomes a purchase with probability ``purchase_rate`` (revenue: the product's price, else 1,
  sent as the purchase event's value).

First one experiment runs live through the service (its experiment store, the served-list log, event
attribution and the report code the API runs): served against popular. Then, over the same lists (each
configuration's list for each user comes from the service's pipeline once), ``experiments`` A/A
experiments (two identical arms) and as many A/B experiments (served against popular) are replayed with
fresh arm assignments (another experiment name, so another hash) and fresh click draws, and each is
reported by the same report code. A/A: how often the click-through difference is "significant" (the
interval's honesty: about 5% expected). A/B: how often served is found better.
"""

from __future__ import annotations

import math
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from recommender.embedding import Embedder
from recommender.evaluation.data import Dataset
from recommender.evaluation.replay import import_items, record_events, temporary_service
from recommender.evaluation.run import catalogue_items
from recommender.evaluation.split import (
    Split,
    SplitOptions,
    leave_one_out,
    replayed_interactions,
    request_at_test_event,
)
from recommender.events import AttributedEvent
from recommender.metrics import list_metrics
from recommender.models import EventType, InteractionEvent
from recommender.online.attribution import EXPLICIT
from recommender.online.experiments import Experiment, ExperimentIn
from recommender.online.report import ExperimentReport, experiment_report
from recommender.online.served import ServedList
from recommender.pipeline.variants import VARIANTS
from recommender.service import RecommenderService
from recommender.settings import Settings

PLACEMENT = "simulated"


@dataclass
class SimulationConfig:
    settings: Settings = field(default_factory=Settings)
    experiments: int = 100
    k: int = 10
    purchase_rate: float = 0.5
    seed: int = 42
    epochs: int | None = None
    split: SplitOptions = field(default_factory=SplitOptions)
    max_users: int | None = None


@dataclass
class SimulationResult:
    users: int
    live_report: ExperimentReport
    offline_ndcg_at_10: dict[str, float]
    aa_false_positive_rate: float
    ab_detection_rate: float
    ab_mean_ctr_difference: float
    ab_runs: int
    aa_runs: int
    details: dict[str, Any] = field(default_factory=dict)


def examine(position: int) -> float:
    return 1.0 / math.log2(position + 1)


def run_simulation(
    config: SimulationConfig,
    dataset: Dataset,
    embedder: Embedder,
    on_step: Callable[[str], None] | None = None,
) -> SimulationResult:
    step = on_step or (lambda _: None)
    split = leave_one_out(dataset, replace(config.split, cold_item_share=0.0, seed=config.seed))
    settings = config.settings
    if config.epochs is not None:
        settings = settings.model_copy(
            update={"collab": settings.collab.model_copy(update={"epochs": config.epochs})}
        )
    with temporary_service(settings, embedder) as opened, tempfile.TemporaryDirectory() as folder:
        service = opened.service
        step(f"importing {split.item_count} items")
        import_items(service, catalogue_items(dataset, split), Path(folder))
        step("recording events")
        record_events(service, replayed_interactions(split))
        step("training")
        service.train(config.seed)
        users = split.user_ids_in_order()
        if config.max_users is not None and len(users) > config.max_users:
            users = sorted(random.Random(config.seed).sample(users, config.max_users))
        step(f"lists for {len(users)} shoppers")
        lists = {name: _lists(service, split, users, name, config.k) for name in ("served", "popular")}
        targets = {split.user_ids[user]: split.item_ids[split.test[user]] for user in users}
        prices = service.loop.prices(sorted(set(targets.values())))  # a product without one counts 1
        catalogue = split.item_ids[1:]
        popularity = service.pipeline.item_stats().users
        offline = {
            name: list_metrics(
                [shown[split.user_ids[u]] for u in users],
                [targets[split.user_ids[u]] for u in users],
                catalogue,
                popularity,
                set(),
                {},
            )["ndcg@10"]
            for name, shown in lists.items()
        }
        step("one experiment live through the service")
        live = _live_experiment(service, split, users, targets, prices, config)
    step(f"{config.experiments} A/A and {config.experiments} A/B experiments")
    rng = random.Random(config.seed)
    false_positives = detected = 0
    differences = []
    for run in range(config.experiments):
        same = replay_experiment(
            f"aa-{run}", {"control": lists["served"], "twin": lists["served"]}, targets, prices, config, rng
        )
        if same.arms[1].difference and same.arms[1].difference["ctr"].significant:
            false_positives += 1
        ab = replay_experiment(
            f"ab-{run}",
            {"control": lists["served"], "popular": lists["popular"]},
            targets,
            prices,
            config,
            rng,
        )
        difference = ab.arms[1].difference["ctr"] if ab.arms[1].difference else None
        if difference is not None:
            differences.append(difference.value)
            if difference.significant and difference.value < 0:
                detected += 1
    return SimulationResult(
        users=len(users),
        live_report=live,
        offline_ndcg_at_10=offline,
        aa_false_positive_rate=false_positives / config.experiments,
        ab_detection_rate=detected / config.experiments,
        ab_mean_ctr_difference=sum(differences) / len(differences) if differences else 0.0,
        ab_runs=config.experiments,
        aa_runs=config.experiments,
    )


def _lists(
    service: RecommenderService, split: Split, users: list[int], variant: str, k: int
) -> dict[str, list[str]]:
    pipeline = service.pipeline.configured(**VARIANTS[variant]) if VARIANTS[variant] else service.pipeline
    return {
        split.user_ids[user]: [
            item.product_id for item in pipeline.run(request_at_test_event(split, user, k)).items
        ]
        for user in users
    }


def _shopper_acts(shown: list[str], target: str, rate: float, rng: random.Random) -> tuple[bool, bool]:
    """(clicked, bought) for one shopper and one list."""
    if target not in shown:
        return False, False
    clicked = rng.random() < examine(shown.index(target) + 1)
    return clicked, clicked and rng.random() < rate


def _live_experiment(
    service: RecommenderService,
    split: Split,
    users: list[int],
    targets: dict[str, str],
    prices: dict[str, float],
    config: SimulationConfig,
) -> ExperimentReport:
    name = "served-vs-popular"
    service.loop.start_experiment(
        ExperimentIn(
            name=name,
            placement=PLACEMENT,
            arms={"control": {}, "popular": {"variant": "popular"}},
            traffic={"control": 50, "popular": 50},
        )
    )
    rng = random.Random(config.seed)
    actions: list[InteractionEvent] = []
    for user in users:
        request = replace(request_at_test_event(split, user, config.k), placement=PLACEMENT)
        result = service.online.run(request)
        shown = [item.product_id for item in result.items]
        user_id = split.user_ids[user]
        clicked, bought = _shopper_acts(shown, targets[user_id], config.purchase_rate, rng)
        revenue = prices.get(targets[user_id], 1.0)
        moment = request.time or datetime.now(UTC)
        acts: list[tuple[EventType, float | None]] = [(EventType.CLICK, None)] if clicked else []
        acts += [(EventType.PURCHASE, revenue)] if bought else []
        actions += [
            InteractionEvent(
                user_id=user_id,
                product_id=targets[user_id],
                type=kind,
                value=value,
                timestamp=moment,
                recommendation_id=result.recommendation_id,
            )
            for kind, value in acts
        ]
    # Recorded after every list was served, so that no shopper's action changes another's list.
    if actions:
        service.loop.record_events(actions)
    return service.loop.report(name)


def replay_experiment(
    name: str,
    arms: dict[str, dict[str, list[str]]],
    targets: dict[str, str],
    prices: dict[str, float],
    config: SimulationConfig,
    rng: random.Random,
) -> ExperimentReport:
    experiment = Experiment(
        name=name, arms={arm: {} for arm in arms}, traffic={arm: 100 / len(arms) for arm in arms}
    )
    served, events = [], []
    moment = datetime.now(UTC)
    for user_id, target in targets.items():
        arm = experiment.arm_of(user_id)
        shown = arms[arm][user_id]
        list_id = f"{name}-{user_id}"
        served.append(ServedList(list_id, user_id, PLACEMENT, name, arm, shown, moment))
        clicked, bought = _shopper_acts(shown, target, config.purchase_rate, rng)
        if clicked:
            events.append(AttributedEvent(list_id, user_id, target, EventType.CLICK, None, EXPLICIT))
        if bought:
            events.append(AttributedEvent(list_id, user_id, target, EventType.PURCHASE, None, EXPLICIT))
    return experiment_report(
        experiment, served, events, lambda ids: {pid: prices.get(pid, 1.0) for pid in ids}
    )
