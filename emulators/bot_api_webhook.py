"""Webhook delivery of the Bot API emulator: POST queued updates to the registered URL.

Like Telegram: the secret token registered with ``setWebhook`` is sent in
``X-Telegram-Bot-Api-Secret-Token``; an update counts as delivered on HTTP 200 and is retried
otherwise; up to ``max_connections`` requests run at once, but never two of one chat, so a chat's
updates arrive in order. For scale-out tests ``targets`` stands in for a load balancer: the
deliveries go round-robin to those URLs instead of the registered one, and a redelivered update
goes to a different replica than the one that got it before.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from emulators.bot_api_state import EmulatorState, QueuedUpdate

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
RETRY_SECONDS = 0.2
REQUEST_TIMEOUT = 60.0


@dataclass(frozen=True)
class Delivery:
    """One webhook request: which update, to where, and the HTTP status (0: no answer)."""

    update_id: int
    url: str
    status: int


def chat_of(update: dict[str, Any]) -> int | None:
    for kind in ("message", "edited_message", "channel_post"):
        if kind in update:
            return int(update[kind]["chat"]["id"])
    message = update.get("callback_query", {}).get("message")
    return int(message["chat"]["id"]) if message else None


class WebhookDeliverer:
    """Pushes the emulator's update queue to the webhook while one is set."""

    def __init__(self, state: EmulatorState, max_connections: int = 8) -> None:
        self.state = state
        self.max_connections = max_connections
        self.targets: list[str] = []
        self.deliveries: list[Delivery] = []
        self._in_flight: set[int] = set()
        self._busy_chats: set[int] = set()
        self._retry_at: dict[int, float] = {}
        self._last_url: dict[int, str] = {}
        self._next = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.stopped = False

    async def run(self) -> None:
        """Deliver until ``stopped`` is set (a flag: 3.11's wait_for may swallow a cancel)."""
        async with aiohttp.ClientSession() as http:
            try:
                while not self.stopped:
                    event = self.state.event
                    if self.state.webhook["url"]:
                        self._dispatch(http)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(event.wait(), RETRY_SECONDS / 2)
            finally:
                for task in self._tasks:
                    task.cancel()
                await asyncio.gather(*self._tasks, return_exceptions=True)

    def _dispatch(self, http: aiohttp.ClientSession) -> None:
        blocked: set[int | None] = set()
        now = time.monotonic()
        for entry in list(self.state.queue):
            chat = chat_of(entry.update)
            waiting = (
                entry.update_id in self._in_flight
                or chat in blocked
                or chat in self._busy_chats
                or len(self._in_flight) >= self.max_connections
                or self._retry_at.get(entry.update_id, 0) > now
            )
            if chat is not None:
                blocked.add(chat)  # later updates of this chat wait for this one
            if waiting:
                continue
            self._in_flight.add(entry.update_id)
            if chat is not None:
                self._busy_chats.add(chat)
            task = asyncio.create_task(self._deliver(http, entry, chat))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _target(self, entry: QueuedUpdate) -> str:
        targets = self.targets or [str(self.state.webhook["url"])]
        before = self._last_url.get(entry.update_id)
        url = targets[self._next % len(targets)]
        self._next += 1
        if url == before and len(targets) > 1:  # a redelivery goes to another replica
            url = targets[self._next % len(targets)]
            self._next += 1
        self._last_url[entry.update_id] = url
        return url

    async def _deliver(
        self, http: aiohttp.ClientSession, entry: QueuedUpdate, chat: int | None
    ) -> None:
        url = self._target(entry)
        secret = self.state.webhook.get("secret_token")
        headers = {SECRET_HEADER: str(secret)} if secret else {}
        timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
        try:
            async with http.post(url, json=entry.update, headers=headers, timeout=timeout) as r:
                status = r.status
        except (aiohttp.ClientError, TimeoutError):
            status = 0
        finally:
            self._in_flight.discard(entry.update_id)
            if chat is not None:
                self._busy_chats.discard(chat)
        self.deliveries.append(Delivery(entry.update_id, url, status))
        if status == 200:
            with contextlib.suppress(ValueError):
                self.state.queue.remove(entry)
            self._retry_at.pop(entry.update_id, None)
        else:
            self._retry_at[entry.update_id] = time.monotonic() + RETRY_SECONDS
        self.state.notify()
