"""llama.cpp's calls leave no OpenMP threads behind on the long-lived thread that asked for them: such
threads made GNU OpenMP treat the process as oversubscribed, and LightGBM's training 6-8 times slower in
it (llm/own_thread.py; bench/openmp_after_llm.py measures it)."""

from __future__ import annotations

from recommender.llm.calls import LLMCalls
from recommender.llm.chat import LocalGGUFChat
from tests.recommender.test_openmp import settled, threads_now


def test_each_kind_of_call_from_the_calls_pool_leaves_no_thread_behind(local_chat: LocalGGUFChat) -> None:
    calls = LLMCalls(1)
    calls.run(lambda: None, 10.0)  # the pool's thread: long-lived, as in a server
    before = threads_now()
    answer = calls.run(lambda: local_chat.complete("Answer in one word.", "Say hello.", 8, 120.0), 120.0)
    scores = calls.run(lambda: local_chat.label_scores("Answer A or B.", "A or B?", ["A", "B"]), 120.0)
    pieces = calls.run(lambda: list(local_chat.stream("Answer in one word.", "Say hi.", 8, 120.0)), 120.0)
    assert answer and scores is not None and len(scores) == 2 and pieces
    assert settled(before) == set()


def test_a_stream_given_up_early_stops_its_producer_and_frees_the_model(local_chat: LocalGGUFChat) -> None:
    stream = local_chat.stream("Count slowly.", "Count from one to fifty in words.", 64, 120.0)
    first = next(stream)
    stream.close()  # the client went away
    assert first
    # The lock is free again: the next call is answered (it would wait forever on a held lock).
    assert local_chat.complete("Answer in one word.", "Say hello.", 8, 120.0)
