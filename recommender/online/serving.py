"""What the API serves: the pipeline of the request's experiment arm (or the served one), the list
recorded with an id, placement, experiment and arm. ``recommender eval`` calls the pipeline directly:
an evaluation serves no shopper, so it records nothing."""

from __future__ import annotations

import json
import threading

from recommender.models import ProductFilter, RecommendationList
from recommender.online.experiments import Assignment, Experiments
from recommender.online.served import ServedLists
from recommender.pipeline.pipeline import Pipeline
from recommender.pipeline.request import PipelineRequest


class OnlineRecommender:
    def __init__(
        self, pipeline: Pipeline, served: ServedLists, experiments: Experiments, record: bool = True
    ) -> None:
        self.pipeline = pipeline
        self.served = served
        self.record = record
        self.experiments = experiments
        self._arms: dict[str, Pipeline] = {}
        self._lock = threading.Lock()

    def calls_a_model(self, request: PipelineRequest) -> bool:
        return self.pipeline.calls_a_model(request)

    def run(self, request: PipelineRequest) -> RecommendationList:
        assignment = self.experiments.assign(request.user_id, request.placement)
        pipeline = self._pipeline_for(assignment) if assignment is not None else self.pipeline
        result = pipeline.run(request)
        result.placement = request.placement
        if assignment is not None:
            result.experiment, result.arm = assignment.experiment, assignment.arm
        if self.record:
            result.recommendation_id = self.served.record(
                request.user_id,
                request.placement,
                [item.product_id for item in result.items],
                result.experiment,
                result.arm,
                request.query,
            )
        return result

    def similar(
        self,
        product_id: str,
        k: int,
        product_filter: ProductFilter | None,
        placement: str,
        user_id: str | None = None,
    ) -> RecommendationList:
        """Products like one product, without those a rule blocks on the placement; recorded like any list."""
        rules = self.pipeline.rules
        blocked = sorted(rules.active(placement).blocked) if rules is not None else []
        result = self.pipeline.similar(product_id, k, product_filter, blocked)
        result.placement = placement
        for position, item in enumerate(result.items, start=1):
            item.position = position
        if self.record:
            shown = [item.product_id for item in result.items]
            result.recommendation_id = self.served.record(user_id, placement, shown)
        return result

    def _pipeline_for(self, assignment: Assignment) -> Pipeline:
        key = json.dumps(assignment.changes, sort_keys=True)
        with self._lock:
            pipeline = self._arms.get(key)
            if pipeline is None:
                pipeline = self._arms[key] = (
                    self.pipeline.configured(**assignment.changes) if assignment.changes else self.pipeline
                )
            return pipeline
