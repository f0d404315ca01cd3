"""Re-ranking, explanations and chat put together over the retriever: what the API calls."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

from recommender.catalog import Catalog
from recommender.events import EventStore, StoredEvent
from recommender.llm.calls import LLMCalls
from recommender.llm.chat import ChatModel, OpenAICompatibleChat
from recommender.llm.comparison import compare
from recommender.llm.conversation import ChatAnswer, ChatContext, ChatQuestion, ConversationService
from recommender.llm.conversation_store import ConversationStore
from recommender.llm.explain import Explainer, compute_evidence
from recommender.llm.rerank import Reranker
from recommender.models import EventType, ProductFilter, Recommendation, RecommendationList
from recommender.retrieval import Retriever
from recommender.settings import LLMConfig
from recommender.telemetry import count_fallback

HISTORY_IN_PROMPT = 20


class LLMFeatures:
    def __init__(
        self,
        chat: ChatModel | None,
        settings: LLMConfig,
        retriever: Retriever,
        catalog: Catalog,
        events: EventStore,
        conversations: ConversationStore,
        calls: LLMCalls | None = None,
        blocked: Callable[[], set[str]] = set,
    ) -> None:
        """``blocked``: what merchandising rules block on the chat placement (never an alternative)."""
        self.chat_model = chat
        self.settings = settings
        # One in-process model runs one call at a time; an endpoint can take a few in parallel. Tenants that
        # share a model share its calls too.
        self.calls = calls or LLMCalls(1 if chat is None or not isinstance(chat, OpenAICompatibleChat) else 4)
        self.reranker = Reranker(chat, settings, self.calls)
        self.explainer = Explainer(chat, settings, self.reranker.may_send_user_data, self.calls)
        self.conversations = ConversationService(
            chat, settings, self.reranker.may_send_user_data, conversations
        )
        self._retriever = retriever
        self._catalog = catalog
        self._events = events
        self._blocked = blocked

    def calls_a_model(self, rerank: bool, explain: bool) -> bool:
        """Whether a request with these options calls the chat model (re-ranking or explaining)."""
        return self.chat_model is not None and (rerank or explain)

    def _reranks(self, rerank: bool) -> bool:
        return self.calls_a_model(rerank, explain=False)

    def recommend(
        self,
        retrieve: Callable[[int], RecommendationList],
        k: int,
        user_id: str | None = None,
        query: str | None = None,
        rerank: bool = True,
        explain: bool = False,
        language: str = "en",
        history: list[StoredEvent] | None = None,
    ) -> RecommendationList:
        """Retrieve (over-fetching to re-rank), re-rank within the budget, cut to k, explain on request.

        ``history``: the user's events as of an earlier moment (newest first), in place of the stored ones
        (the training job's gate asks what a user would have been served before their next event)."""
        # Over-fetch only for a model that will re-rank. Without one the list is cut to k anyway, and its
        # first k are those of a deeper list (the category cap, MMR and the top-up fill in order): reading,
        # building and dropping 50 items cost the service without an LLM ~1.5 ms a request at 100k.
        depth = max(k, self.settings.overfetch) if self._reranks(rerank) else k
        result = retrieve(depth)
        # The history is only read when an LLM step or an explanation will use it.
        needs_history = bool(user_id) and (explain or self._reranks(rerank))
        if not (needs_history and user_id):
            history = []
        elif history is not None:
            history = history[:HISTORY_IN_PROMPT]
        else:
            history = self._events.history(user_id, HISTORY_IN_PROMPT)
        history_products = self._payloads([event.product_id for event in history])
        items = result.items
        if rerank:
            items, outcome = self.reranker.rerank(items, history, history_products, query)
            result.reranking = dataclasses.asdict(outcome)
            if self.chat_model is not None and not outcome.reranked:
                count_fallback("rerank", outcome.reason)
        else:
            result.reranking = {"reranked": False, "reason": "not requested"}
        result.items = items[:k]
        if explain:
            # Every candidate's title counts as a name an explanation must not borrow.
            candidate_names = {item.product["title"].lower() for item in items} | {
                item.product.get("brand", "").lower() for item in items if item.product.get("brand")
            }
            self._explain(result.items, history, history_products, query, language, candidate_names)
        return result

    def _payloads(self, product_ids: list[str]) -> dict[str, dict]:
        payloads = {}
        for product_id in dict.fromkeys(product_ids):
            try:
                payloads[product_id] = self._catalog.get(product_id).model_dump()
            except Exception:  # deleted since the event: the history simply lacks it
                continue
        return payloads

    def _explain(
        self,
        items: list[Recommendation],
        history: list[StoredEvent],
        history_products: dict[str, dict],
        query: str | None,
        language: str,
        candidate_names: set[str],
    ) -> None:
        usable_history = [event for event in history if event.product_id in history_products]
        vectors = self._catalog.vectors([item.product_id for item in items] + list(history_products))
        known_names = candidate_names | {product["title"].lower() for product in history_products.values()}
        # All the explanations of one response share one time budget; past it they are template sentences.
        deadline = time.monotonic() + self.settings.timeout_seconds
        for item in items:
            evidence = compute_evidence(
                item, vectors.get(item.product_id), usable_history, history_products, vectors, query
            )
            explanation = self.explainer.explain(evidence, item.product, known_names, language, deadline)
            if self.chat_model is not None and explanation.source != "llm":
                count_fallback("explain", explanation.note)
            item.explanation = {
                "text": explanation.text,
                "source": explanation.source,
                "note": explanation.note,
                "evidence": dataclasses.asdict(explanation.evidence),
            }

    def chat_context(self, product_id: str, user_id: str | None) -> ChatContext:
        product = self._catalog.get(product_id).model_dump()
        history = self._events.history(user_id, HISTORY_IN_PROMPT) if user_id else []
        history_products = self._payloads([event.product_id for event in history])
        usable_history = [event for event in history if event.product_id in history_products]
        vectors = self._catalog.vectors([product_id, *history_products])
        similar = self._retriever.similar(product_id, 5)
        item = Recommendation(product_id=product_id, score=1.0, signal=similar.signal, product=product)
        evidence = compute_evidence(
            item, vectors.get(product_id), usable_history, history_products, vectors, None
        )
        known_names = {
            product["title"].lower(),
            *(p["title"].lower() for p in history_products.values()),
            *(i.product["title"].lower() for i in similar.items),
            *(i.product.get("brand", "").lower() for i in similar.items if i.product.get("brand")),
        }

        bought = sorted(self._events.products_with_events(user_id, [EventType.PURCHASE])) if user_id else []

        def find_alternatives(intent: str) -> list[Recommendation]:
            """Never the product itself or what the shopper bought; for "cheaper", strictly cheaper (when
            the price is known). The product's own category path first, then wider paths, by similarity."""
            price_max = None
            if intent == "cheaper" and product.get("price") is not None:
                price_max = max(0.0, float(product["price"]) - 0.01)
            found: list[Recommendation] = []
            path = [part for part in str(product.get("category", "")).split(" > ") if part]
            for depth in range(len(path), 0, -1) if path else [0]:
                category = " > ".join(path[:depth]) or None
                taken = [item.product_id for item in found]
                more = self._retriever.similar(
                    product_id,
                    5 - len(found),
                    ProductFilter(category=category, price_max=price_max),
                    [*bought, *taken, *self._blocked()],
                ).items
                found += more
                if len(found) >= 5:
                    break
            return found[:5]

        def search_titles(name: str, k: int) -> list[dict]:
            return [item.product for item in self._retriever.for_query(name, k).items]

        return ChatContext(
            product,
            evidence,
            [p["title"] for p in history_products.values()],
            known_names,
            find_alternatives,
            lambda message, language: compare(message, product, search_titles, language),
        )

    def chat(self, question: ChatQuestion) -> ChatAnswer:
        return self.conversations.answer(question, self.chat_context(question.product_id, question.user_id))

    def chat_stream(self, question: ChatQuestion) -> Iterator[str | ChatAnswer]:
        context = self.chat_context(question.product_id, question.user_id)  # an unknown product fails here
        return self.conversations.stream(question, context)
