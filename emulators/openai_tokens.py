"""Token accounting (o200k_base, OpenAI cookbook rules) and output limits for the emulator."""

from __future__ import annotations

from functools import cache
from typing import Any

import bpe_openai

ENCODING_NAME = "o200k_base"
TOKENS_PER_MESSAGE = 3
TOKENS_PER_NAME = 1
REPLY_PRIMING_TOKENS = 3


@cache
def _encoding() -> bpe_openai.Encoding:
    """Load the tokenizer once per process."""
    return bpe_openai.get_encoding(ENCODING_NAME)


def encode(text: str) -> list[int]:
    """Encode text as ordinary text (special-token markers count as plain text)."""
    return list(_encoding().encode_ordinary(text))


def count_tokens(text: str) -> int:
    """Number of o200k_base tokens in ``text``."""
    return len(encode(text)) if text else 0


def truncate_to_tokens(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` to at most ``limit`` tokens; return the text and whether it was cut."""
    tokens = encode(text)
    if len(tokens) <= limit:
        return text, False
    raw = _encoding().decode_bytes(tokens[:limit])
    return raw.decode("utf-8", errors="ignore"), True


def content_text(content: Any) -> str:
    """Text carried by a message content (a string or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def count_message_tokens(message: dict[str, Any]) -> int:
    """Tokens of one chat message: 3 + each string value (+1 when ``name`` is present)."""
    total = TOKENS_PER_MESSAGE
    for key, value in message.items():
        if key == "content":
            total += count_tokens(content_text(value))
        elif isinstance(value, str):
            total += count_tokens(value)
        if key == "name":
            total += TOKENS_PER_NAME
    return total


def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """Prompt tokens of a chat request, per the OpenAI cookbook (+3 for reply priming)."""
    return sum(count_message_tokens(m) for m in messages) + REPLY_PRIMING_TOKENS


def requested_max_tokens(body: dict[str, Any]) -> int | None:
    """``max_tokens``, ``max_completion_tokens`` or ``max_output_tokens`` of a body, if set."""
    value = body.get("max_tokens")
    for other in ("max_completion_tokens", "max_output_tokens"):
        if value is None:
            value = body.get(other)
    return value if isinstance(value, int) else None


def apply_limits(text: str, finish: str, body: dict[str, Any]) -> tuple[str, str]:
    """Truncate reply text at the first stop sequence, then at ``max_tokens``."""
    stop = body.get("stop")
    stops = [stop] if isinstance(stop, str) else list(stop or [])
    cuts = [text.find(s) for s in stops if s and s in text]
    if cuts:
        text, finish = text[: min(cuts)], "stop"
    limit = requested_max_tokens(body)
    if limit is not None:
        text, truncated = truncate_to_tokens(text, limit)
        if truncated:
            finish = "length"
    return text, finish
