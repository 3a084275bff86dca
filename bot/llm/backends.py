"""The dispatcher: one `ChatClient` per configured profile, picked by `ChatRequest.profile`.

`Backends.stream` has the signature of `ChatClient.stream`, so the turn runner does not care
whether it talks to one backend or several.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import httpx

from bot.config import Settings
from bot.llm.client import ChatClient
from bot.llm.endpoint import Endpoint, endpoints
from bot.llm.types import ChatRequest, StreamEvent
from bot.model_profile import DEFAULT_PROFILE

logger = logging.getLogger(__name__)


class ModelClient(Protocol):
    """What a turn needs from the model side."""

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]: ...


class Backends:
    """Routes each request to its profile's client; an unknown profile gets the default one."""

    def __init__(self, clients: Mapping[str, ChatClient]) -> None:
        if DEFAULT_PROFILE not in clients:
            raise ValueError("the default profile is required")
        self._clients = dict(clients)

    @classmethod
    def from_settings(cls, http: httpx.AsyncClient, settings: Settings) -> Backends:
        return cls(
            {
                name: ChatClient(http, endpoint=endpoint, max_retries=settings.openai_max_retries)
                for name, endpoint in endpoints(settings).items()
            }
        )

    def endpoint(self, profile: str) -> Endpoint:
        return self._client(profile).endpoint

    def _client(self, profile: str) -> ChatClient:
        client = self._clients.get(profile)
        if client is None:
            logger.warning("profile %r is not configured; using the default one", profile)
            return self._clients[DEFAULT_PROFILE]
        return client

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """Yield the reply's events from the request's profile."""
        return self._client(request.profile).stream(request)
