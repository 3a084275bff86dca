"""Streaming client for OpenAI-compatible `POST {base_url}/chat/completions`.

One shared `httpx.AsyncClient`; the response is read as server-sent events and turned into
`StreamEvent`s. Failures before the first token are retried with backoff (honouring
Retry-After); once text has been yielded, a failure is raised to the caller, who has shown it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
from httpx_sse import SSEError, aconnect_sse

from bot.errors import (
    LLMConnectionError,
    LLMError,
    LLMProtocolError,
    LLMStatusError,
)
from bot.llm.errors_map import status_error, stream_error, transport_error
from bot.llm.types import ChatRequest, StreamEvent, Usage

logger = logging.getLogger(__name__)

MAX_RETRY_WAIT = 30.0


def delta_reasoning(delta: dict[str, Any]) -> str:
    """The thinking in a chunk's delta (`reasoning_content`, or OpenRouter's `reasoning`)."""
    value = delta.get("reasoning_content") or delta.get("reasoning") or ""
    return value if isinstance(value, str) else ""


def parse_chunk(data: str, *, secret: str = "") -> StreamEvent | None:
    """Parse one `data:` payload of a chat.completion.chunk stream (None for empty deltas)."""
    try:
        chunk: Any = json.loads(data)
    except ValueError as exc:
        raise LLMProtocolError(f"invalid JSON in stream: {data[:80]!r}") from exc
    if not isinstance(chunk, dict):
        raise LLMProtocolError(f"unexpected stream payload: {data[:80]!r}")
    if chunk.get("error"):
        raise stream_error(chunk, secret=secret)
    text, reasoning, finish = "", "", None
    choices = chunk.get("choices") or []
    if choices and isinstance(choices[0], dict):
        delta = choices[0].get("delta") or {}
        text = delta.get("content") or ""
        reasoning = delta_reasoning(delta) if isinstance(delta, dict) else ""
        finish = choices[0].get("finish_reason")
    usage = None
    if isinstance(raw := chunk.get("usage"), dict):
        usage = Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
    if not text and not reasoning and finish is None and usage is None:
        return None
    return StreamEvent(text=text, finish_reason=finish, usage=usage, reasoning=reasoning)


class ChatClient:
    """Streams chat completions from one OpenAI-compatible server."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str = "",
        max_retries: int = 2,
        backoff: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self._url = f"{base_url.rstrip('/')}/chat/completions"
        self._headers = {"Accept": "text/event-stream"}
        self._api_key = api_key
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._max_retries = max_retries
        self._backoff = backoff
        self._sleep = sleep

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Yield the reply's events; raise an LLMError subclass on failure."""
        attempt = 0
        while True:
            started = False
            try:
                async for event in self._stream_once(request):
                    started = True
                    yield event
                return
            except LLMError as exc:
                if started or not exc.retryable or attempt >= self._max_retries:
                    raise
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise
                attempt += 1
                logger.warning("model request failed (%s); retry %d in %.1fs", exc, attempt, delay)
                await self._sleep(delay)

    def _retry_delay(self, exc: LLMError, attempt: int) -> float | None:
        asked = exc.retry_after if isinstance(exc, LLMStatusError) else None
        if asked is not None:
            return asked if asked <= MAX_RETRY_WAIT else None
        return min(MAX_RETRY_WAIT, self._backoff * 2.0**attempt) * random.uniform(0.8, 1.2)

    async def _stream_once(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        finished = False
        try:
            async with aconnect_sse(
                self._http, "POST", self._url, json=request.to_json(), headers=self._headers
            ) as source:
                response = source.response
                if response.status_code >= 400:
                    body = await response.aread()
                    raise status_error(
                        response.status_code, body, response.headers, secret=self._api_key
                    )
                async for sse in source.aiter_sse():
                    if sse.data.strip() == "[DONE]":
                        return
                    if not sse.data:
                        continue
                    event = parse_chunk(sse.data, secret=self._api_key)
                    if event is not None:
                        finished = finished or event.finish_reason is not None
                        yield event
        except SSEError as exc:
            raise LLMProtocolError(f"not an event stream: {exc}") from exc
        except httpx.HTTPError as exc:
            raise transport_error(exc) from exc
        if not finished:
            raise LLMConnectionError("the stream ended before the reply was finished")
