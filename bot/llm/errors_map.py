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


def _error_fields(payload: Any) -> tuple[str, str | None]:
    """(message, code) from an OpenAI-style `{"error": {...}}` payload, or whatever it is."""
    error = payload.get("error", payload) if isinstance(payload, dict) else payload
    if isinstance(error, dict):
        message = str(error.get("message") or error.get("detail") or error)
        code = error.get("code") or error.get("type")
        return message[:500], str(code) if code is not None else None
    return str(error).strip()[:500] or "no details", None


def error_from_payload(
    status: int, payload: Any, *, retry_after: float | None = None, secret: str = ""
) -> LLMStatusError:
    """The typed error for an HTTP status and its decoded error body; `secret` is redacted."""
    message, code = _error_fields(payload)
    if secret:
        message = message.replace(secret, "***")
    kind: type[LLMStatusError]
    if status in (401, 403):
        kind = LLMAuthError
    elif status == 404:
        kind = LLMNotFoundError
    elif status == 429:
        kind = LLMRateLimitError
    elif any(m in f"{code} {message}".lower() for m in CONTEXT_LENGTH_MARKERS):
        kind = ContextLengthError
    elif status >= 500:
        kind = LLMServerError
    else:
        kind = LLMBadRequestError
    return kind(status, message, code=code, retry_after=retry_after)


def status_error(
    status: int, body: bytes, headers: httpx.Headers, *, secret: str = ""
) -> LLMStatusError:
    """The typed error for an HTTP error answer."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        payload = body.decode("utf-8", "replace")
    return error_from_payload(
        status, payload, retry_after=parse_retry_after(headers), secret=secret
    )


def stream_error(payload: Any, *, secret: str = "") -> LLMStatusError:
    """The typed error for an `{"error": ...}` object sent inside an event stream."""
    error = payload.get("error") if isinstance(payload, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    status = int(str(code)) if str(code).isdigit() else 500
    return error_from_payload(status, payload, secret=secret)


def transport_error(exc: httpx.HTTPError) -> LLMError:
    """Map an httpx failure; the message never includes headers or the API key."""
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout | httpx.PoolTimeout):
        return LLMTimeoutError(f"{type(exc).__name__} talking to the model server")
    return LLMConnectionError(f"{type(exc).__name__}: {exc}")
