"""Offline token counting for chat prompts.

Uses `bpe-openai`, which ships the o200k/cl100k vocabularies inside the wheel, so nothing is
downloaded at run time. Other models get a conservative estimate (o200k plus a margin).
The per-message overhead follows the OpenAI cookbook: 3 tokens per message plus the tokens of
each value (+1 with a `name`), and 3 more to prime the reply.

A message of parts costs the same overhead plus each part's tokens: text by its prompt text,
an image by OpenAI's rules for the model (bot.llm.image_tokens; conservative for others, and
calibrated by the server's counts), a tool call by its id, name and arguments, a tool result as
the `tool` message it becomes.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cache, lru_cache
from typing import Protocol

import bpe_openai
from bpe_openai import registry

from bot.llm.image_tokens import ImageDetail, image_tokens
from bot.parts import Content, ImagePart, Part, ToolCallPart, ToolResultPart, prompt_text

TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3
# Unknown models (Llama, Qwen, Mistral, ...) are counted with o200k plus a margin, and never
# below one token per 4 bytes: bytes alone undercount code, digits and emoji.
ESTIMATE_MARGIN = 1.25
ESTIMATE_BYTES_PER_TOKEN = 4
TOKENS_PER_PART = 1  # the separator (or array item) between one part and the next
TOKENS_PER_TOOL_CALL = 3  # {"type": "function", "function": {...}} around name and arguments


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...


# Model-name prefixes of OpenAI's families, most specific first.
ENCODING_BY_PREFIX = (
    (("gpt-4o", "chatgpt-4o", "gpt-4.1", "gpt-4.5", "gpt-5", "o1", "o3", "o4"), "o200k_base"),
    (("gpt-4", "gpt-3.5", "gpt-35", "text-embedding-3", "text-embedding-ada-002"), "cl100k_base"),
)


@cache
def _encoding(name: str) -> _Encoding:
    """One encoding per vocabulary for the whole process (`get_encoding` builds a new one,
    ~75 MB and ~80 ms, on every call)."""
    encoding: _Encoding = bpe_openai.get_encoding(name)
    _release_loader_tables()
    return encoding


def _release_loader_tables() -> None:
    """Drop the vocabularies bpe_openai keeps cached after building an encoding.

    It reads three of them at import (for their special tokens) and keeps each as a Python
    dict (~25 MB apiece) that an encoding, which holds its own copy, never needs again.
    """
    loaders = [getattr(registry, "_load_mergeable_ranks", None)]
    loaders += list(getattr(registry, "ENCODING_CONSTRUCTORS", {}).values())
    for loader in loaders:
        if callable(clear := getattr(loader, "cache_clear", None)):
            clear()


@lru_cache(maxsize=64)
def _encoding_for(model: str) -> _Encoding | None:
    """The exact encoding for a known OpenAI model (provider prefixes ignored), else None."""
    name = model.rsplit("/", 1)[-1].lower()
    for prefixes, encoding_name in ENCODING_BY_PREFIX:
        if name.startswith(prefixes):
            return _encoding(encoding_name)
    return None


class TokenCounter:
    """Counts tokens the way a given model's server will, or errs on the high side."""

    def __init__(self, model: str) -> None:
        self.model = model
        found = _encoding_for(model)
        self.exact = found is not None
        self._encoding = found or _encoding("o200k_base")

    def count_text(self, text: str) -> int:
        if not text:
            return 0
        # Ordinary: a user may type '<|endoftext|>'; it is plain text to the server, and
        # encode() would raise on it.
        tokens = len(self._encoding.encode_ordinary(text))
        if self.exact:
            return tokens
        by_bytes = len(text.encode("utf-8")) / ESTIMATE_BYTES_PER_TOKEN
        return math.ceil(max(tokens * ESTIMATE_MARGIN, by_bytes))

    def count_message(self, role: str, content: str, name: str | None = None) -> int:
        """Tokens one chat message adds to a prompt, overhead included."""
        tokens = TOKENS_PER_MESSAGE + self.count_text(role) + self.count_text(content)
        if name:
            tokens += TOKENS_PER_NAME + self.count_text(name)
        return tokens

    def count_part(self, part: Part) -> int:
        """Tokens one part adds to its message, as sent in chat mode."""
        if isinstance(part, ImagePart):
            detail: ImageDetail = "low" if part.detail == "low" else "high"  # "auto" may be high
            return image_tokens(self.model, part.width, part.height, detail)
        if isinstance(part, ToolCallPart):
            ids = self.count_text(part.call_id) + self.count_text(part.name)
            return TOKENS_PER_TOOL_CALL + ids + self.count_text(part.arguments)
        if isinstance(part, ToolResultPart):  # a `tool` message of its own
            head = TOKENS_PER_MESSAGE + self.count_text("tool") + self.count_text(part.call_id)
            return head + self.count_text(part.text)
        return self.count_text(prompt_text(part))

    def counted(self, parts: tuple[Part, ...]) -> tuple[Part, ...]:
        """The parts with their token counts filled in."""
        return tuple(dataclasses.replace(part, tokens=self.count_part(part)) for part in parts)

    def count_content(self, role: str, content: Content) -> int:
        """Tokens of a message whose content is a string or parts (counted ones keep theirs)."""
        if isinstance(content, str):
            return self.count_message(role, content)
        parts = sum(part.tokens or self.count_part(part) for part in content)
        separators = TOKENS_PER_PART * max(0, len(content) - 1)
        return TOKENS_PER_MESSAGE + self.count_text(role) + parts + separators
