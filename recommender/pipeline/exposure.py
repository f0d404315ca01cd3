"""Which personal lists get the new-product places.

Every list getting one shows the same few products to everybody when only a few products are new, and
each such place pushes out of the page a product the user was likelier to choose. With ``per_product``,
each product without events takes a place in about a fixed share of the lists (its exposure while it
gathers its first events), so the share of lists with a place grows with the number of such products,
up to every list, and past that the number of places in a list grows (up to a bound). The lists that
get them are those of the users who match a new product best, read against training users' states, so
that the places go where a new product is likeliest to be chosen.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

import numpy as np


def place_count(new_products: int, per_product: float, slots: int, slots_max: int) -> int:
    """The places in a list that gets them: ``slots``, or more once every list has a place (up to
    ``slots_max``), so that each of ``new_products`` still takes a place in a ``per_product`` share of
    the lists. A handful of new products share one place in some of the lists; a new collection of many
    takes more places instead of a sliver of one each. 0 slots or nothing new: none."""
    if new_products <= 0 or slots <= 0:
        return 0
    needed = math.ceil(per_product * new_products - 1e-9)
    return min(max(slots, slots_max), max(slots, needed))


def place_share(new_products: int, per_product: float, places: int) -> float:
    """The share of lists that get the places when each of ``new_products`` takes one of ``places`` in
    a ``per_product`` share of the lists (1: every list)."""
    if new_products <= 0 or places <= 0:
        return 0.0
    return min(1.0, per_product * new_products / places)


def drawn(user_id: str) -> float:
    """A fixed number in [0, 1) per user: who gets the places when nothing ranks the users."""
    # A cryptographic hash: CRC32 of ids that differ in a digit or two is far from uniform.
    digest = hashlib.blake2b(user_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True)
class NewProductExposure:
    """The share of personal lists that get the new-product places, the best new-arrivals score a user
    needs for them (the training users' scores at that share; None: drawn by user id), and how many
    places such a list has."""

    share: float
    threshold: float | None
    places: int = 1

    @classmethod
    def every_list(cls, places: int = 1) -> NewProductExposure:
        return cls(1.0, None, places)

    @classmethod
    def from_reference(
        cls, share: float, reference_best: np.ndarray | None, places: int = 1
    ) -> NewProductExposure:
        """``reference_best``: each training user's best new-arrivals score over the products without
        events now; the top ``share`` of them set the bar."""
        if share >= 1.0 or share <= 0.0 or reference_best is None or len(reference_best) == 0:
            return cls(share, None, places)
        return cls(share, float(np.quantile(reference_best, 1.0 - share, method="higher")), places)

    def places_for(self, user_id: str, best_score: float | None) -> int:
        """The places this user's list keeps for products without events (0: none)."""
        return self.places if self.admits(user_id, best_score) else 0

    def admits(self, user_id: str, best_score: float | None) -> bool:
        if self.share >= 1.0:
            return True
        if self.share <= 0.0:
            return False
        if self.threshold is None or best_score is None:
            return drawn(user_id) < self.share
        return best_score >= self.threshold
