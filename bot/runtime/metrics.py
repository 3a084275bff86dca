"""Prometheus metrics: turns, tokens, model latency, Telegram API errors, queue depth.

The collectors live in the process-wide default registry and are served at `/metrics`. The
model is measured by wrapping the model client, Telegram calls by wrapping the rate limiter, so
the code under them stays unaware of metrics.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from prometheus_client import Counter, Gauge, Histogram
from telegram.error import (
    BadRequest,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.ext import BaseRateLimiter

from bot.llm.backends import ModelClient
from bot.llm.types import ChatRequest, StreamEvent
from bot.runtime.ratelimit import ChatRateLimiter, JSONResult, RateLimitArgs

LATENCY_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 60, 120, 300)

TURNS = Counter("memorybot_turns", "Conversation turns, by outcome.", ["outcome"])
TOKENS = Counter("memorybot_tokens", "Tokens reported by the model server.", ["kind"])
MODEL_LATENCY = Histogram(
    "memorybot_model_latency_seconds", "Whole model requests.", buckets=LATENCY_BUCKETS
)
FIRST_TOKEN = Histogram(
    "memorybot_time_to_first_token_seconds", "Request to first text.", buckets=LATENCY_BUCKETS
)
TELEGRAM_ERRORS = Counter(
    "memorybot_telegram_api_errors", "Failed Bot API calls, by kind.", ["kind"]
)
QUEUE_DEPTH = Gauge("memorybot_queued_updates", "Updates running or waiting for their chat.")
WEBHOOK_REJECTED = Counter(
    "memorybot_webhook_rejected", "Webhook requests refused, by reason.", ["reason"]
)
DUPLICATE_UPDATES = Counter("memorybot_duplicate_updates", "Redelivered updates ignored.")


def error_kind(exc: TelegramError) -> str:
    """A small fixed label set for Telegram errors (subclasses before their bases)."""
    kinds: tuple[tuple[type[TelegramError], str], ...] = (
        (RetryAfter, "retry_after"),
        (Forbidden, "forbidden"),
        (InvalidToken, "invalid_token"),
        (BadRequest, "bad_request"),
        (TimedOut, "timeout"),
        (Conflict, "conflict"),
        (NetworkError, "network"),
    )
    return next((label for cls, label in kinds if isinstance(exc, cls)), "other")


class MeteredClient:
    """A model client that records latency, time to first token and reported tokens."""

    def __init__(self, inner: ModelClient) -> None:
        self._inner = inner

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        started = time.monotonic()
        first = True
        try:
            async for event in self._inner.stream(request):
                if event.text and first:
                    first = False
                    FIRST_TOKEN.observe(time.monotonic() - started)
                if event.usage is not None:
                    TOKENS.labels("prompt").inc(event.usage.prompt_tokens)
                    TOKENS.labels("completion").inc(event.usage.completion_tokens)
                yield event
        finally:
            MODEL_LATENCY.observe(time.monotonic() - started)


class MeteredRateLimiter(BaseRateLimiter[RateLimitArgs]):
    """Counts failed Bot API calls by kind around the real `ChatRateLimiter`."""

    def __init__(self, inner: ChatRateLimiter) -> None:
        self._inner = inner

    async def initialize(self) -> None:
        await self._inner.initialize()

    async def shutdown(self) -> None:
        await self._inner.shutdown()

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: RateLimitArgs | None,
    ) -> JSONResult:
        async def counted(*call_args: Any, **call_kwargs: Any) -> JSONResult:
            try:
                return await callback(*call_args, **call_kwargs)
            except TelegramError as exc:  # every failed attempt, also 429s retried inside
                TELEGRAM_ERRORS.labels(error_kind(exc)).inc()
                raise

        return await self._inner.process_request(
            counted, args, kwargs, endpoint, data, rate_limit_args
        )
