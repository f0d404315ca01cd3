"""Named pipeline configurations: what `recommender eval --variants` compares offline and what an
experiment's arm may name (``{"variant": "popular"}``) online. Each is a set of changes to the pipeline's
settings over the same trained parts."""

from __future__ import annotations

from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "served": {},
    "fusion": {"ranker": "fusion"},
    "collab": {"sources": ["collab"], "ranker": "fusion"},
    "text": {"sources": ["text"], "ranker": "fusion"},
    "cooccurrence": {"sources": ["cooccurrence"], "ranker": "fusion"},
    "popular": {"sources": ["popular"], "ranker": "fusion"},
    "trending": {"sources": ["trending"], "ranker": "fusion"},
    "new": {"sources": ["new"], "ranker": "fusion"},
    "new-no-prior": {"sources": ["new"], "ranker": "fusion", "new_arrivals_prior_weight": 0.0},
    "served-no-new-slot": {"new_product_slots": 0},
    "served-new-no-prior": {"new_arrivals_prior_weight": 0.0},
    "new-no-text": {"sources": ["new"], "ranker": "fusion", "new_arrivals_text_weight": 0.0},
    "served-new-no-text": {"new_arrivals_text_weight": 0.0},
    "served-2-new-slots": {"new_product_slots": 2, "new_product_slots_max": 2},
    "served-one-new-slot": {"new_product_slots_max": 1},  # the places in a list never grow
    "served-new-every-list": {"new_product_exposure": "every_list"},
    "served-new-drawn": {"new_product_lists": "drawn"},
    "served-new-share-2pc": {"new_product_list_share": 0.02},
    "served-2-new-within-100": {
        "new_product_slots": 2,
        "new_product_slots_max": 2,
        "new_product_max_rank": 100,
    },
    "served+mmr": {"diversity": "mmr"},
    "served-no-diversity": {"diversity": "none"},
    # The optional stages as configured, whatever the training's stage gate decided.
    "served-ungated": {"gated_stages": []},
}

# What `recommender eval` runs unless told otherwise: the served configuration, rank fusion (served
# without the learned ranker), served without the new-product places, and each source alone (the rows a
# shop needs to see whether every stage earns its place). `--variants all` runs every variant above.
DEFAULT_VARIANTS = (
    "served",
    "fusion",
    "served-no-new-slot",
    "collab",
    "text",
    "cooccurrence",
    "popular",
    "trending",
    "new",
)

# Each gated stage and the variant that leaves it out: the test split's side of what validation decided
# (for a stage the gate switched off, ``served-ungated`` is the row with it; a rejected ranker is not kept).
STAGE_WITHOUT = {
    "ranker": "fusion",
    "new_product_places": "served-no-new-slot",
    "diversity": "served-no-diversity",
    "llm_rerank": "served@sample",  # against served+llm@sample, when the eval re-ranks a sample
}
