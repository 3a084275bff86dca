"""Streaming client for one OpenAI-compatible backend, in any of its three API modes.

The `Endpoint` says where and how (chat/completions, completions or responses; Azure; extra
headers); `bodies` builds the request and `events` reads the server-sent events into
`StreamEvent`s. One shared `httpx.AsyncClient`. Failures before the first token are retried
with backoff (honouring Retry-After); once text has been yielded, a failure is raised to the
caller, who has shown it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
from httpx_sse import SSEError, aconnect_sse

from bot.errors import (
    LLMConnectionError,
    LLMError,
    LLMProtocolError,
    LLMStatusError,
)
from bot.llm.bodies import request_body
from bot.llm.endpoint import Endpoint, PromptTemplate
from bot.llm.errors_map import status_error, transport_error
from bot.llm.events import events_for, parse_chunk
from bot.llm.types import ChatRequest, StreamEvent
from bot.model_profile import DEFAULT_MESSAGE_TEMPLATE, DEFAULT_STOP, DEFAULT_TEMPLATE

__all__ = ["MAX_RETRY_WAIT", "ChatClient", "parse_chunk"]

logger = logging.getLogger(__name__)

MAX_RETRY_WAIT = 30.0


class ChatClient:
    """Streams replies from one backend: an `endpoint`, or a plain chat/completions base URL."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str = "",
        api_key: str = "",
        endpoint: Endpoint | None = None,
        max_retries: int = 2,
        backoff: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._http = http
        self.endpoint = endpoint or Endpoint(
            base_url=base_url.rstrip("/"),
            model="",
            context_tokens=0,
            template=PromptTemplate(DEFAULT_TEMPLATE, DEFAULT_MESSAGE_TEMPLATE, DEFAULT_STOP),
            api_key=api_key,
        )
        self._headers = self.endpoint.request_headers()
        self._api_key = self.endpoint.api_key
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
        endpoint = self.endpoint
        events = events_for(endpoint.api, secret=self._api_key)
        try:
            async with aconnect_sse(
                self._http,
                "POST",
                endpoint.url(request.model),
                params=endpoint.params(),
                json=request_body(request, endpoint),
                headers=self._headers,
            ) as source:
                response = source.response
                if response.status_code >= 400:
                    body = await response.aread()
                    raise status_error(
                        response.status_code, body, response.headers, secret=self._api_key
                    )
                async for sse in source.aiter_sse():
                    if not sse.data:
                        continue
                    event = events.feed(sse.event, sse.data)
                    if event is not None:
                        yield event
                    if events.done:
                        return
        except SSEError as exc:
            raise LLMProtocolError(f"not an event stream: {exc}") from exc
        except httpx.HTTPError as exc:
            raise transport_error(exc) from exc
        if not events.finished:
            raise LLMConnectionError("the stream ended before the reply was finished")
