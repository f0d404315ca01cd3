"""What validation decided for each gated stage in training, and what the test split says of it.

The test split is judged by the gate's own rule (``PairedDifference.first_lower``): a stage is worth
serving unless the row with it is lower than the row without it by more than noise, measured as the
paired difference of the same users' NDCG@10. So a gap of a few thousandths on a few hundred users agrees
with a stage that serves, as it did in training; only a difference beyond noise contradicts the gate.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console

from recommender.evaluation.llm_effect import LLM_SAMPLE_ROW
from recommender.pipeline.pipeline import LLM_RERANK
from recommender.pipeline.variants import STAGE_WITHOUT
from recommender.training.stages import PairedDifference

ENCODER_SUFFIX = "+encoder"  # rows measured again once the shop's fine-tuned encoder serves

# Per row: each measured user's NDCG@10 on the test split, seeds one after another (same users per row).
UserNdcgs = Mapping[str, Sequence[float]]


def stage_decisions(trainings: list[dict[str, Any]], user_ndcgs: UserNdcgs) -> list[dict]:
    """Per gated stage: what validation decided in training (per seed) and what the test split says
    (the row with the stage against the row without it, when both were measured)."""
    decisions = []
    for stage, without in STAGE_WITHOUT.items():
        if stage == "ranker":
            gates = [training.get("ranker_gate", {}) for training in trainings]
            validation = [_ranking_gate(gate) for gate in gates if gate]
        else:
            validation = [
                {
                    "with": training["stage_gate"][stage]["with_ndcg_at_10"],
                    "without": training["stage_gate"][stage]["without_ndcg_at_10"],
                    "serves": training["stage_gate"][stage]["served"],
                }
                for training in trainings
                if stage in training.get("stage_gate", {})
            ]
        if not validation:
            continue
        if stage == LLM_RERANK:  # measured on a sample, both arms explicit (see llm_rerank_effect)
            decisions.append(_decision(stage, validation, LLM_SAMPLE_ROW, without, user_ndcgs))
            continue
        serves = _serves(validation)
        # Served has the stage when validation let it serve; otherwise served is the row without it.
        with_row, without_row = ("served", without) if serves else ("served-ungated", "served")
        if stage == "ranker" and not serves:
            # A rejected learned ranker is not kept, so the test split cannot score it; a source's own
            # order is that source's row.
            rejected = Counter(seed["ranking"] for seed in validation).most_common(1)[0][0]
            with_row = rejected if rejected != "learned" else ""
        decisions.append(_decision(stage, validation, with_row, without_row, user_ndcgs))
        if stage == "ranker" and serves:
            decisions.extend(_runner_up_decision(validation, user_ndcgs))
    gates = [training.get("encoder", {}).get("served_gate", {}) for training in trainings]
    validation = [
        {"with": gate["with_ndcg_at_10"], "without": gate["without_ndcg_at_10"], "serves": gate["served"]}
        for gate in gates
        if "with_ndcg_at_10" in gate
    ]
    if validation:  # the shop's encoder: both rows are measured whatever its gate decided
        decisions.append(
            _decision("shop_encoder", validation, f"served{ENCODER_SUFFIX}", "served", user_ndcgs)
        )
    return decisions


def _ranking_gate(gate: dict[str, Any]) -> dict:
    """The ranker's gate as a stage: what would replace rank fusion (the learned ranker or one source's
    own order, the one that serves or else the best of them) against fusion, and whether it serves. The
    learned ranker is compared with fusion on every validation user, a source's own order on the judging
    users (``judged``; builds before it judged everything there)."""
    serves = gate.get("serves", "learned" if gate["published"] else "fusion")
    judged = gate.get("judged", {"learned": gate["ranker_ndcg_at_10"], "fusion": gate["fusion_ndcg_at_10"]})
    arms = {"learned": judged["learned"], **gate.get("sources", {})}  # all on the judging users
    ranking = serves if serves != "fusion" else max(arms, key=lambda name: arms[name])
    if ranking == "learned":
        with_score, without_score = gate["ranker_ndcg_at_10"], gate["fusion_ndcg_at_10"]
    else:
        with_score, without_score = arms[ranking], judged["fusion"]
    others = {name: score for name, score in {"fusion": judged["fusion"], **arms}.items() if name != ranking}
    runner_up = max(others, key=lambda name: others[name])
    return {
        "with": with_score,
        "without": without_score,
        "serves": serves != "fusion",
        "ranking": ranking,
        # The best ranking that did not serve (besides the one above), and both figures on the same users.
        "runner_up": runner_up,
        "runner_up_ndcg_at_10": others[runner_up],
        "judged_with": arms[ranking],
    }


def _runner_up_decision(validation: list[dict], user_ndcgs: UserNdcgs) -> list[dict]:
    """Where a ranking other than fusion serves, the one it beat by the least on validation, when that is a
    source's own order (a row the test split measures): a choice inside the gate's noise shows up here."""
    runners = [seed for seed in validation if seed["serves"] and seed.get("runner_up")]
    if not runners:
        return []
    runner_up = Counter(seed["runner_up"] for seed in runners).most_common(1)[0][0]
    if runner_up in ("learned", "fusion"):  # a rejected ranker is not kept; fusion is the ranker stage's
        return []
    seeds = [
        {
            "with": seed["judged_with"],
            "without": seed["runner_up_ndcg_at_10"],
            "serves": True,
            "ranking": seed["ranking"],
        }
        for seed in runners
        if seed["runner_up"] == runner_up
    ]
    return [_decision(f"ranking_over_{runner_up}", seeds, "served", runner_up, user_ndcgs)]


def _serves(validation: list[dict]) -> bool:
    return sum(seed["serves"] for seed in validation) * 2 >= len(validation)


def _decision(
    stage: str, validation: list[dict], with_row: str, without_row: str, user_ndcgs: UserNdcgs
) -> dict:
    serves = _serves(validation)
    test = None
    if with_row in user_ndcgs and without_row in user_ndcgs:
        paired = PairedDifference.of(user_ndcgs[with_row], user_ndcgs[without_row])
        test = {
            "with_variant": with_row,
            "without_variant": without_row,
            "users": paired.users,
            "with": paired.first,
            "without": paired.second,
            "difference": paired.difference,
            "standard_error": paired.standard_error,
            "lowers_test": paired.first_lower,
            # The gate's rule applied to the test split: does it reach the same decision?
            "agrees": (not paired.first_lower) == serves,
        }
    return {"stage": stage, "serves": serves, "validation": validation, "test": test}


def _ranking(seed: dict) -> str:
    return f" ({seed['ranking']})" if "ranking" in seed else ""


def print_decisions(decisions: list[dict], console: Console) -> None:
    """What validation decided for each gated stage, and whether the test split agrees."""
    for decision in decisions:
        seeds = decision["validation"]
        served = sum(seed["serves"] for seed in seeds)
        figures = "; ".join(
            f"{seed['with']:.4f} with{_ranking(seed)}, {seed['without']:.4f} without" for seed in seeds
        )
        line = (
            f"{decision['stage'].replace('_', ' ')}: validation NDCG@10 {figures} -> serves in {served} of "
            f"{len(seeds)} training(s)"
        )
        test = decision["test"]
        if test is not None:
            line += (
                f"; test split {test['with']:.4f} {test['with_variant']}, {test['without']:.4f} "
                f"{test['without_variant']}, difference {test['difference']:+.4f} ± "
                f"{test['standard_error']:.4f} on {test['users']} users "
                f"({'agrees' if test['agrees'] else 'disagrees'})"
            )
        console.print(line)


def print_text_weight(trainings: list[dict[str, Any]], console: Console) -> None:
    """The new-arrivals text weight's own gate (``choose_tower``): its cross-fitted gain in the training
    users' reciprocal rank, per training, and in how many it serves; again over the shop's encoder."""
    for key, label in (("item_tower", ""), ("encoder_item_tower", " over the shop's encoder")):
        towers = [training.get(key) or {} for training in trainings]
        fitted = [tower for tower in towers if tower.get("text_gain") is not None]  # None: not fitted
        if not fitted:
            continue
        figures = "; ".join(f"{tower['text_gain']:+.4f} ± {tower['text_gain_se']:.4f}" for tower in fitted)
        serving = sum(tower["text_weight"] > 0 for tower in fitted)
        console.print(
            f"new-arrivals text weight{label}: gain in the training users' reciprocal rank {figures} "
            f"(cross-fitted; serves beyond 2 standard errors) -> serves in {serving} of {len(fitted)} "
            "training(s)"
        )
