"""Leave-one-out split: per user, time-ordered; last item = test, the one before = validation.

Items are re-indexed 1..N (0 is padding for the sequence models).
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from functools import cached_property

from recommender.evaluation.data import Dataset, Interaction
from recommender.pipeline.request import PipelineRequest

# How many products each evaluated list holds (the metrics read @10 and @20).
LIST_DEPTH = 20


class TieOrder(StrEnum):
    ROW = "row"  # stable: original row order among equal timestamps (RecBole files)
    ITEM = "item"  # by item id (LlamaRec's public code)


@dataclass(frozen=True)
class SplitOptions:
    min_user_interactions: int = 3
    min_item_interactions: int = 0
    tie_order: TieOrder = TieOrder.ROW
    max_length: int | None = None  # keep only each user's last N training items (None: all of them)
    cold_item_share: float = 0.0  # >0: hold these test items out of every training event
    seed: int = 42


@dataclass
class Split:
    item_ids: list[str]  # index -> external id; index 0 is padding
    train: dict[int, list[int]]  # user -> training sequence (item indices), time order
    valid: dict[int, int]  # user -> validation target
    test: dict[int, int]  # user -> test target
    user_ids: list[str]
    cold_items: set[int]
    ordered: dict[int, list[Interaction]]  # user -> every interaction, time order (the test one last)

    @cached_property
    def cold_item_ids(self) -> frozenset[str]:
        """The held-out products' ids (computed once; every test request reads them)."""
        return frozenset(self.item_ids[item] for item in self.cold_items)

    @property
    def item_count(self) -> int:
        return len(self.item_ids) - 1

    def user_ids_in_order(self) -> list[int]:
        return sorted(self.train)

    def history_for_test(self, user: int) -> list[int]:
        """The test input: training sequence plus the validation item (minus cold items, never seen)."""
        return (
            [*self.train[user], self.valid[user]]
            if self.valid[user] not in self.cold_items
            else self.train[user]
        )

    def popularity(self, include_valid: bool) -> Counter[int]:
        """Interactions per item in the training events (plus validation targets when testing)."""
        counts: Counter[int] = Counter()
        for user, sequence in self.train.items():
            counts.update(sequence)
            if include_valid and self.valid[user] not in self.cold_items:
                counts[self.valid[user]] += 1
        return counts


def k_core(interactions: list[Interaction], min_user: int, min_item: int) -> list[Interaction]:
    """Drop users and items with too few interactions, repeatedly, until both limits hold."""
    current = interactions
    while True:
        users = Counter(interaction.user_id for interaction in current)
        items = Counter(interaction.item_id for interaction in current)
        kept = [i for i in current if users[i.user_id] >= min_user and items[i.item_id] >= min_item]
        if len(kept) == len(current):
            return kept
        current = kept


def leave_one_out(dataset: Dataset, options: SplitOptions) -> Split:
    interactions = k_core(
        dataset.interactions, max(3, options.min_user_interactions), options.min_item_interactions
    )
    by_user: dict[str, list[Interaction]] = defaultdict(list)
    for interaction in interactions:
        by_user[interaction.user_id].append(interaction)

    def order(interaction: Interaction) -> tuple:
        if options.tie_order is TieOrder.ITEM:
            # Numeric ids by value, before any other id (a mixed catalog must still sort).
            item = interaction.item_id
            return (interaction.timestamp, (0, int(item), "") if item.isdigit() else (1, 0, item))
        return (interaction.timestamp, interaction.row)

    item_ids = ["<pad>", *sorted({i.item_id for i in interactions}, key=lambda x: (len(x), x))]
    index_of = {item_id: index for index, item_id in enumerate(item_ids)}
    user_ids = sorted(by_user, key=lambda x: (len(x), x))
    train: dict[int, list[int]] = {}
    valid: dict[int, int] = {}
    test: dict[int, int] = {}
    ordered: dict[int, list[Interaction]] = {}
    for user_index, user_id in enumerate(user_ids):
        ordered[user_index] = sorted(by_user[user_id], key=order)
        sequence = [index_of[i.item_id] for i in ordered[user_index]]
        test[user_index] = sequence[-1]
        valid[user_index] = sequence[-2]
        train[user_index] = sequence[:-2][-options.max_length :] if options.max_length else sequence[:-2]

    cold_items: set[int] = set()
    if options.cold_item_share > 0:
        rng = random.Random(options.seed)
        test_items = sorted(set(test.values()))
        cold_items = set(rng.sample(test_items, max(1, int(len(test_items) * options.cold_item_share))))
        # Cold items vanish from every training sequence and from validation (a cold item has no events).
        train = {
            user: [item for item in sequence if item not in cold_items] for user, sequence in train.items()
        }
    return Split(item_ids, train, valid, test, user_ids, cold_items, ordered)


def replayed_interactions(split: Split) -> list[Interaction]:
    """What the service is given: every interaction but each user's test one, none of a cold item."""
    cold = {split.item_ids[item] for item in split.cold_items}
    return [
        interaction
        for user in split.user_ids_in_order()
        for interaction in split.ordered[user][:-1]
        if interaction.item_id not in cold
    ]


def request_at_test_event(split: Split, user: int, k: int = LIST_DEPTH) -> PipelineRequest:
    """What the API would be asked at the moment of the user's test event.

    The protocol ranks the products the user has not rated. In the cold-start split the user may have
    rated other held-out products earlier; the service has no event for them, so the request excludes
    them, as a shop excludes what it knows a customer owns (``exclude`` in ``POST /recommendations``).
    Without this a product the user had already rated could take a new-product place and count as a miss.
    """
    moment = datetime.fromtimestamp(split.ordered[user][-1].timestamp, UTC)
    target = split.item_ids[split.test[user]]
    rated_unknown = [
        event.item_id
        for event in split.ordered[user][:-1]
        if event.item_id in split.cold_item_ids and event.item_id != target
    ]
    return PipelineRequest(k=k, user_id=split.user_ids[user], time=moment, exclude=rated_unknown)
