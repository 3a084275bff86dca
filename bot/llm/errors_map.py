"""Translate HTTP answers and httpx exceptions into the bot's LLMError tree, once."""

from __future__ import annotations

import email.utils
import json
import time
from typing import Any

import httpx

from bot.errors import (
    ContextLengthError,
    LLMAuthError,
    LLMBadRequestError,
    LLMConnectionError,
    LLMError,
    LLMNotFoundError,
    LLMRateLimitError,
    LLMServerError,
    LLMStatusError,
    LLMTimeoutError,
)

CONTEXT_LENGTH_MARKERS = ("context_length_exceeded", "maximum context length", "context length")


def parse_retry_after(headers: httpx.Headers) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or HTTP date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_fields(body: bytes) -> tuple[str, str | None]:
    """(message, code) from an OpenAI-style `{"error": {...}}` body, or the raw text."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        return body.decode("utf-8", "replace").strip()[:300] or "no details", None
    error = data.get("error", data) if isinstance(data, dict) else data
    if isinstance(error, dict):
        message = str(error.get("message") or error.get("detail") or error)
        code = error.get("code") or error.get("type")
        return message[:500], str(code) if code is not None else None
    return str(error)[:500], None


def status_error(status: int, body: bytes, headers: httpx.Headers) -> LLMStatusError:
    message, code = _error_fields(body)
    retry_after = parse_retry_after(headers)
    kind: type[LLMStatusError]
    if status in (401, 403):
        kind = LLMAuthError
    elif status == 404:
        kind = LLMNotFoundError
    elif status == 429:
        kind = LLMRateLimitError
    elif status >= 500:
        kind = LLMServerError
    elif any(m in f"{code} {message}".lower() for m in CONTEXT_LENGTH_MARKERS):
        kind = ContextLengthError
    else:
        kind = LLMBadRequestError
    return kind(status, message, code=code, retry_after=retry_after)


def transport_error(exc: httpx.HTTPError) -> LLMError:
    """Map an httpx failure; the message never includes headers or the API key."""
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        return LLMTimeoutError(f"{type(exc).__name__} talking to the model server")
    return LLMConnectionError(f"{type(exc).__name__}: {exc}")
