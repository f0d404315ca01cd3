"""'Why this item?' conversations about one recommended product, grounded in evidence and fresh retrieval."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from recommender.errors import NotFoundError
from recommender.llm.chat import ChatModel
from recommender.llm.comparison import Comparison
from recommender.llm.conversation_store import Conversation, ConversationStore, Turn
from recommender.llm.explain import Evidence, mentions_outside, template_sentence
from recommender.llm.gate import SENTENCE_END, language_problem, quality_problem, ungrounded_sentence
from recommender.llm.prompting import as_data, leaks_system_prompt, render, system_prompt
from recommender.llm.templates import phrases
from recommender.models import Recommendation
from recommender.settings import LLMConfig
from recommender.telemetry import count_fallback

CHEAPER = re.compile(r"\b(cheaper|less expensive|lower price|budget|affordable|price)\b", re.IGNORECASE)
ALTERNATIVE = re.compile(
    r"\b(similar|alternative|alternatives|else|other|instead|like it|like this)\b", re.IGNORECASE
)
DIFFERENCE = re.compile(r"\b(differ|different|difference|compare|versus|vs)\b", re.IGNORECASE)
# Chinese has no word boundaries for \b: these match anywhere.
CHEAPER_ZH = re.compile(r"便宜|实惠|划算|低价|价格更低")
DIFFERENCE_ZH = re.compile(r"区别|不同|差别|差异|比较|对比")
ALTERNATIVE_ZH = re.compile(r"类似|相似|替代|其他|别的")


@dataclass(frozen=True)
class ChatQuestion:
    """One shopper message about one product, with where the conversation stands."""

    product_id: str
    message: str
    user_id: str | None = None
    conversation_id: str | None = None
    prior: tuple[Turn, ...] = ()
    language: str = "en"
    caller: str = "loopback"  # the API key's id: a conversation belongs to the key and the user


@dataclass
class ChatAnswer:
    conversation_id: str
    answer: str
    intent: str
    alternatives: list[Recommendation]
    evidence: Evidence
    source: str  # "llm" or "template"
    note: str = ""


@dataclass
class ChatContext:
    """What the conversation is grounded in, gathered by the caller (retrieval lives outside this module)."""

    product: dict
    evidence: Evidence
    history_titles: list[str]
    known_names: set[str]
    find_alternatives: Callable[[str], list[Recommendation]]  # intent -> fresh retrieval
    compare: Callable[[str, str], Comparison | None] = lambda message, language: None  # noqa: E731


def complete_sentences(text: str) -> tuple[list[str], str]:
    """Split streamed text into the sentences already complete and the rest still being written."""
    parts = SENTENCE_END.split(text)
    return [part for part in parts[:-1] if part.strip()], parts[-1]


def detect_intent(message: str) -> str:
    if CHEAPER.search(message) or CHEAPER_ZH.search(message):
        return "cheaper"
    if DIFFERENCE.search(message) or DIFFERENCE_ZH.search(message):
        return "difference"
    if ALTERNATIVE.search(message) or ALTERNATIVE_ZH.search(message):
        return "alternatives"
    return "why"


def template_answer(
    intent: str,
    context: ChatContext,
    alternatives: list[Recommendation],
    language: str = "en",
    comparison: Comparison | None = None,
) -> str:
    say = phrases(language)
    title = context.product["title"]
    if comparison is not None:
        if comparison.other is not None:
            listed = say["separator"].join(comparison.facts) or say["no_differences"]
            return str(say["compared"].format(title=title, other=comparison.other["title"], facts=listed))
        if comparison.ambiguous:
            options = say["separator"].join(str(p["title"]) for p in comparison.ambiguous)
            return str(say["which_one"].format(name=comparison.name, options=options))
        return str(say["unknown_other"].format(name=comparison.name))
    if intent in ("cheaper", "alternatives"):
        if not alternatives:
            cheaper = say["cheaper_word"] if intent == "cheaper" else ""
            return str(say["nothing"].format(cheaper=cheaper, title=title))
        listed = "; ".join(
            f"{item.product['title']} ({item.product_id}"
            + (f", {item.product['price']:.2f}" if item.product.get("price") is not None else "")
            + ")"
            for item in alternatives[:3]
        )
        template = say["cheaper_options"] if intent == "cheaper" else say["similar_options"]
        return str(template.format(title=title, listed=listed))
    if intent == "difference" and context.evidence.nearest_history:
        match = context.evidence.nearest_history[0]
        verb = say["verbs"].get(match.event_type, say["verbs"]["view"])
        return str(
            say["difference"].format(title=title, other=match.title, verb=verb, similarity=match.similarity)
        )
    return template_sentence(context.evidence, language)


def chat_facts(
    context: ChatContext, alternatives: list[Recommendation], comparison: Comparison | None = None
) -> list[str]:
    """What an answer may state: the evidence, the product's own category, brand and price, the
    shopper's history titles, the alternatives found (titles, ids and prices) and the computed
    differences from a product the shopper named."""
    product = context.product
    facts = [*context.evidence.facts(), *context.history_titles]
    facts += [part for part in str(product.get("category") or "").split(" > ") if part]
    facts += [str(product[key]) for key in ("brand",) if product.get(key)]
    facts += _prices(product.get("price"))
    for item in alternatives:
        facts += [item.product["title"], item.product_id]
        facts += _prices(item.product.get("price"))
    if comparison is not None:
        facts += comparison.facts + [str(p["title"]) for p in comparison.ambiguous]
        if comparison.other is not None:
            facts.append(str(comparison.other["title"]))
            facts += _prices(comparison.other.get("price"))
    return facts


def _comparison_text(comparison: Comparison | None) -> str:
    if comparison is None:
        return "(no other product named)"
    if comparison.other is None:
        options = ", ".join(as_data(str(p["title"]), 100) for p in comparison.ambiguous)
        return f"'{as_data(str(comparison.name), 100)}' matches " + (options or "no product in the shop")
    lines = [f"compared with: {as_data(str(comparison.other['title']), 100)}"]
    return "\n".join(lines + [f"- {as_data(fact, 300)}" for fact in comparison.facts])


def _prices(price: object) -> list[str]:
    if not isinstance(price, int | float):
        return []
    # "7" alone would match any number in any sentence; "7.00" and "24.99" are prices.
    return list(dict.fromkeys([f"{price:.2f}", *([f"{price:g}"] if "." in f"{price:g}" else [])]))


class ConversationService:
    def __init__(
        self,
        chat: ChatModel | None,
        settings: LLMConfig,
        may_send_user_data: bool,
        conversations: ConversationStore,
    ) -> None:
        self._chat = chat
        self._settings = settings
        self._may_send = may_send_user_data
        self._conversations = conversations

    def _turns(self, question: ChatQuestion) -> tuple[str, list[Turn]]:
        """The conversation's turns. Ids are made here, unguessable; one that is unknown, expired or
        another caller's (key or user) is not found, whatever the reason."""
        if question.conversation_id is None:
            return secrets.token_urlsafe(18), list(question.prior)
        conversation = self._conversations.load(question.conversation_id)
        if conversation is None or (conversation.caller, conversation.user_id) != (
            question.caller,
            question.user_id,
        ):
            raise NotFoundError("conversation", question.conversation_id[:64])
        return question.conversation_id, list(conversation.turns)

    def _remember(self, conversation_id: str, question: ChatQuestion, turns: list[Turn]) -> None:
        self._conversations.save(conversation_id, Conversation(question.caller, question.user_id, turns))

    def of_user(self, user_id: str) -> dict[str, list[Turn]]:
        """Every live conversation of a user (for an export of what is held about them)."""
        return self._conversations.of_user(user_id)

    def forget_user(self, user_id: str) -> int:
        return self._conversations.forget_user(user_id)

    def _prompt(
        self,
        message: str,
        context: ChatContext,
        alternatives: list[Recommendation],
        turns: list[Turn],
        language: str,
        comparison: Comparison | None = None,
    ) -> str:
        product = context.product
        product_text = (
            f"{product['title']} ({product.get('category', '')}; {product.get('brand', '')}; "
            f"price {product.get('price')}) — {product.get('description', '')}"
        )
        alternatives_text = (
            "\n".join(
                f"- {as_data(item.product['title'], 100)} "
                f"(id {item.product_id}, price {item.product.get('price')})"
                for item in alternatives
            )
            or "(none)"
        )
        history = (
            "\n".join(f"- {as_data(title, 100)}" for title in context.history_titles[:10])
            if self._may_send
            else ""
        )
        conversation = (
            "\n".join(f"{turn.role}: {as_data(turn.content, 300)}" for turn in turns[-6:]) or "(none)"
        )
        return render(
            "chat",
            product=as_data(product_text, 500),
            evidence=context.evidence.lines(),
            history=history or "(not shared)",
            alternatives=alternatives_text,
            differences=_comparison_text(comparison),
            conversation=conversation,
            message=as_data(message, 1000),
            language=as_data(language, 20),
        )

    def answer(self, question: ChatQuestion, context: ChatContext) -> ChatAnswer:
        """The whole answer at once (no streaming)."""
        *_, final = self.stream(question, context)
        assert isinstance(final, ChatAnswer)
        return final

    def stream(self, question: ChatQuestion, context: ChatContext) -> Iterator[str | ChatAnswer]:
        """Yields the answer sentence by sentence, each only after the text so far passed the check, then
        the final ChatAnswer.

        Rejected text never leaves: at the first sentence that fails, the stream stops and the final answer
        carries the replacement (``source: template`` and why). Clients show ``answer`` from the final event.
        """
        conversation_id, turns = self._turns(question)  # a conversation that is not the caller's fails now
        return self._generate(question, context, conversation_id, turns)

    def _generate(
        self, question: ChatQuestion, context: ChatContext, conversation_id: str, turns: list[Turn]
    ) -> Iterator[str | ChatAnswer]:
        message, language = question.message, question.language
        intent = detect_intent(message)
        alternatives = context.find_alternatives(intent) if intent in ("cheaper", "alternatives") else []
        comparison = context.compare(message, language) if intent == "difference" else None
        fallback = template_answer(intent, context, alternatives, language, comparison)
        facts = chat_facts(context, alternatives, comparison)
        source, note, text = "template", "", fallback
        if self._chat is None:
            note = "no LLM configured"
        else:
            passed: list[str] = []
            pending = ""
            problem: str | None = None
            try:
                pieces = self._chat.stream(
                    system_prompt(),
                    self._prompt(message, context, alternatives, turns, language, comparison),
                    self._settings.chat_max_tokens,
                    self._settings.timeout_seconds,
                )
                for piece in pieces:
                    sentences, pending = complete_sentences(pending + piece)
                    for sentence in sentences:
                        problem = self._reject_reason(" ".join([*passed, sentence]), context, facts, language)
                        if problem:
                            break
                        passed.append(sentence.strip())
                        yield sentence.strip() + " "
                    if problem:
                        break
                if not problem and pending.strip():
                    problem = self._reject_reason(" ".join([*passed, pending]), context, facts, language)
                    if not problem:
                        passed.append(pending.strip())
                        yield pending.strip()
                if not problem and not passed:
                    problem = "empty"
                # Generation stops with the first rejected sentence; what it would have written is dropped.
                close = getattr(pieces, "close", None)
                if close is not None:
                    close()
                if problem:
                    note = f"LLM answer rejected: {problem}"
                else:
                    text, source = " ".join(passed), "llm"
            except Exception as error:
                note = f"LLM failed ({type(error).__name__}): template answer"
        if self._chat is not None and source != "llm":
            count_fallback("chat", note)
        # Alternatives are listed by id whatever the model wrote, so the client always gets real products.
        turns += [Turn("user", message), Turn("assistant", text)]
        self._remember(conversation_id, question, turns)
        yield ChatAnswer(conversation_id, text, intent, alternatives, context.evidence, source, note)

    @staticmethod
    def _reject_reason(text: str, context: ChatContext, facts: list[str], language: str = "en") -> str | None:
        if not text or len(text) > 1500:
            return "empty or too long"
        if leaks_system_prompt(text):
            return "repeats the instructions"
        problem = (
            quality_problem(text) or language_problem(text, language) or ungrounded_sentence(text, facts)
        )
        if problem:
            return problem
        allowed = {
            context.product["title"].lower(),
            *(fact.lower() for fact in facts),
            *(title.lower() for title in context.history_titles),
            *context.evidence.allowed_names(),
        }
        if context.product.get("brand"):
            allowed.add(context.product["brand"].lower())
        grounding = "\n".join(
            [
                str(context.product),
                context.evidence.lines(),
                *facts,
                *context.history_titles,
            ]
        )
        outside = mentions_outside(text, grounding, allowed, context.known_names)
        if outside:
            return f"names products outside the data: {outside[:3]}"
        return None
