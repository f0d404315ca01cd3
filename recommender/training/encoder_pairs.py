"""Pairs for the encoder. Products that this shop's shoppers treat as alike, mined from the stored
histories: a product and each of the next few products of the same history. Validation users are held out
whole: their last transitions score the encoder, and none of their pairs is trained on. Every other user's
held-out next product (the newest product of their history they had not seen before: what the training
job's ranker and served-lists gate are measured on, ``training.held_out``) and what follows it are not
trained on either, or the gate would judge the encoder on pairs it learned. And search pairs
from the catalog itself (a title and its product, a category's name and a product under it), so that
what search needs is kept; and the shop's own searches, the products its shoppers chose after a query,
with a share of the shoppers held out to check search on."""

from __future__ import annotations

import random
from dataclasses import dataclass

from recommender.events import SearchChoice
from recommender.models import Product

# Each validation user scores this many of its last transitions.
VALIDATION_TRANSITIONS = 3


@dataclass(frozen=True)
class MinedPairs:
    train: list[tuple[str, str]]  # (product id, a product engaged with soon after it)
    validation: list[tuple[str, str]]  # validation users' last transitions
    mined: int  # training pairs before sampling down to the budget
    training_users: int
    validation_users: int


def before_held_out(sequence: list[str]) -> list[str]:
    """The history before its held-out next product: the product first seen last (as
    ``held_out_next_events`` chooses it), cut with everything after it."""
    first_index: dict[str, int] = {}
    for index, product in enumerate(sequence):
        first_index.setdefault(product, index)
    return sequence[: max(first_index.values(), default=0)]


def mine_pairs(
    sequences: dict[str, list[str]],
    window: int,
    max_pairs: int,
    validation_share: float = 0.15,
    max_validation_users: int = 500,
    seed: int = 42,
) -> MinedPairs:
    """``sequences``: each user's products in time order (no immediate repeats). Products that appear in
    no history (a new product) never appear in a pair."""
    users = sorted(user for user, sequence in sequences.items() if len(sequence) >= 2)
    rng = random.Random(seed)
    validation_count = min(max_validation_users, int(len(users) * validation_share))
    validation_users = set(rng.sample(users, validation_count)) if validation_count >= 10 else set()
    train: list[tuple[str, str]] = []
    validation: list[tuple[str, str]] = []
    for user in users:
        sequence = sequences[user]
        if user in validation_users:
            last = list(zip(sequence[:-1], sequence[1:], strict=True))[-VALIDATION_TRANSITIONS:]
            validation.extend(pair for pair in last if pair[0] != pair[1])
            continue
        trained = before_held_out(sequence)
        for start, product in enumerate(trained):
            for following in trained[start + 1 : start + 1 + window]:
                if following != product:
                    train.append((product, following))
    mined = len(train)
    if mined > max_pairs:
        train = rng.sample(train, max_pairs)
    else:
        rng.shuffle(train)
    return MinedPairs(train, validation, mined, len(users) - len(validation_users), len(validation_users))


def search_pairs(products: list[Product], count: int, seed: int = 42) -> list[tuple[str, str]]:
    """(query, product id) pairs from the catalog itself, so that fine-tuning keeps what search needs: a
    product's title finds it, and its category's name finds the products under it. ``count`` pairs, drawn
    with repeats when the catalog has fewer."""
    pairs: list[tuple[str, str]] = []
    for product in products:
        if product.title:
            pairs.append((product.title, product.product_id))
        if product.category:
            pairs.append((product.category.split(">")[-1].strip(), product.product_id))
    if not pairs or count <= 0:
        return []
    rng = random.Random(seed)
    return [rng.choice(pairs) for _ in range(count)] if count > len(pairs) else rng.sample(pairs, count)


@dataclass(frozen=True)
class SearchChoices:
    train: list[tuple[str, str]]  # (query, product id chosen after it)
    checked: list[SearchChoice]  # held-out shoppers' choices: the shop's own search, before and after


def split_search_choices(
    choices: list[SearchChoice], known: set[str], checked_share: float = 0.2, seed: int = 42
) -> SearchChoices:
    """Choices of products in the catalog (``known``), split by shopper: a held-out shopper's searches are
    checked, never trained on."""
    usable = [choice for choice in choices if choice.product_id in known and choice.query.strip()]
    users = sorted({choice.user_id for choice in usable})
    checked_users = set(random.Random(seed).sample(users, int(len(users) * checked_share)))
    return SearchChoices(
        [(choice.query, choice.product_id) for choice in usable if choice.user_id not in checked_users],
        [choice for choice in usable if choice.user_id in checked_users],
    )
