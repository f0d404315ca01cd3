"""The Q8_0 copy llama.cpp runs instead of the packaged Q4_1 file: made once, same model, same answers."""

from __future__ import annotations

import itertools
from pathlib import Path

from scipy.stats import pearsonr

from recommender.llm.chat import LocalGGUFChat
from recommender.llm.gguf_weights import file_type, runnable_weights
from recommender.llm.prompting import render, system_prompt
from recommender.llm.rerank import LABELS
from recommender.settings import LLMConfig

Q4_1, Q8_0 = 3, 7
# Label scores (logits) this close in the original may come out in either order in the copy.
NEAR_TIE = 0.25
CANDIDATES = "\n".join(
    f"{label}. {title}"
    for label, title in zip(
        LABELS,
        [
            "Trail running shoes (Shoes, 139)",
            "Argan oil shampoo (Hair, 12)",
            "Running socks, 3 pack (Apparel, 18)",
            "USB-C docking station (Computers, 89)",
            "GPS running watch (Accessories, 199)",
            "Cast iron skillet (Kitchen, 45)",
        ],
        strict=False,
    )
)


def test_auto_makes_one_q8_0_copy_of_the_packaged_q4_1_file(gguf_path: Path, tmp_path: Path) -> None:
    assert file_type(gguf_path) == Q4_1
    copy = runnable_weights(gguf_path, "auto", tmp_path)
    assert copy != gguf_path and copy.parent == tmp_path
    assert file_type(copy) == Q8_0
    written = copy.stat().st_mtime_ns
    assert runnable_weights(gguf_path, "auto", tmp_path) == copy
    assert copy.stat().st_mtime_ns == written  # reused, not re-made
    assert [path.name for path in tmp_path.iterdir()] == [copy.name]  # no scratch left behind
    # A file that already has a fast type is run as it is, and "file" never converts.
    assert runnable_weights(copy, "auto", tmp_path / "other") == copy
    assert runnable_weights(gguf_path, "file", tmp_path / "other") == gguf_path
    assert not (tmp_path / "other").exists()


def test_an_unwritable_cache_folder_runs_the_file_as_it_is(gguf_path: Path, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the cache folder should be")
    assert runnable_weights(gguf_path, "q8_0", blocked / "gguf") == gguf_path


def test_the_copy_ranks_candidates_like_the_original(gguf_path: Path, tmp_path: Path) -> None:
    labels = list(LABELS[:6])
    original = LocalGGUFChat(
        LLMConfig(backend="local", model=str(gguf_path), local_weights="file", flash_attention=False)
    )
    copy = LocalGGUFChat(LLMConfig(backend="local", model=str(gguf_path), local_cache_dir=tmp_path))
    for history in ["- Marathon training guide (Books): purchase", "- Chef's knife (Kitchen): purchase"]:
        prompt = render(
            "rerank",
            history=history,
            query="(none)",
            candidates=CANDIDATES,
            answer_instruction="Answer with one letter.",
        )
        before = original.label_scores(system_prompt(), prompt, labels)
        after = copy.label_scores(system_prompt(), prompt, labels)
        assert before is not None and after is not None
        assert max(range(6), key=before.__getitem__) == max(range(6), key=after.__getitem__)
        assert pearsonr(before, after).statistic >= 0.9
        # Only near-ties may swap: Kendall's tau alone failed on one machine's build when two labels 0.005
        # apart in the original swapped (tau 0.6), every score within 0.15 of the original's.
        for i, j in itertools.combinations(range(6), 2):
            if (before[i] - before[j]) * (after[i] - after[j]) < 0:
                assert abs(before[i] - before[j]) < NEAR_TIE, (i, j, before, after)
