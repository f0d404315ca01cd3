"""The online loop's operations on one tenant: events with their attribution, rules checked against the
catalog, experiments and their reports."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from recommender.catalog import Catalog
from recommender.errors import InvalidInputError
from recommender.events import EventStore
from recommender.models import InteractionEvent
from recommender.online.attribution import Attribution, attribute
from recommender.online.experiments import ExperimentIn, ExperimentStore
from recommender.online.report import ExperimentReport, experiment_report
from recommender.online.served import ServedLists
from recommender.pipeline.merchandising import MerchRule, RuleStore
from recommender.settings import OnlineSettings


class OnlineLoop:
    def __init__(
        self,
        events: EventStore,
        catalog: Catalog,
        served: ServedLists,
        rules: RuleStore,
        experiments: ExperimentStore,
        settings: OnlineSettings,
    ) -> None:
        self.events = events
        self.catalog = catalog
        self.served = served
        self.rules = rules
        self.experiments = experiments
        self._window = timedelta(hours=settings.attribution_window_hours)

    def record_events(self, events: Sequence[InteractionEvent]) -> Attribution:
        """Store the events, each attributed to the list it came from where one is known."""
        attribution = attribute(events, self.served, self._window)
        self.events.add(events, attribution.links, attribution.queries)
        return attribution

    def add_rule(self, rule: MerchRule) -> MerchRule:
        if rule.product_id is not None and not self.catalog.existing_ids([rule.product_id]):
            raise InvalidInputError(f"no product {rule.product_id!r} in the catalog", field="product_id")
        return self.rules.add(rule)

    def start_experiment(self, experiment: ExperimentIn) -> None:
        self.experiments.create(experiment)

    def report(self, name: str) -> ExperimentReport:
        experiment = self.experiments.get(name)
        lists = self.served.of_experiment(name)
        events = self.events.attributed_to([served.recommendation_id for served in lists])
        return experiment_report(experiment, lists, events, self.prices)

    def prices(self, product_ids: list[str]) -> dict[str, float]:
        """The prices of those products that are in the catalog and have one."""
        prices = {}
        for product_id in sorted(self.catalog.existing_ids(product_ids)):
            price = self.catalog.get(product_id).price
            if price is not None:
                prices[product_id] = float(price)
        return prices
