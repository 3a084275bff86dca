"""Flood control for every Bot API call: per-chat and global token buckets, and a 429 that
delays only the call (and chat) it hit.

Telegram allows about one message per second in a private chat (short bursts tolerated),
20 per minute in a group, and about 30 per second overall; edits count like messages. PTB's
`AIORateLimiter` pauses *all* requests on one 429 and has no per-private-chat limit, which
with many chats streaming at once is the wrong trade; this limiter keeps chats independent.

`rate_limit_args={"max_retries": 0}` makes a call fail fast with `RetryAfter` instead of
sleeping, for callers (the streamer's intermediate edits) that prefer to coalesce.

Bursts are kept one below what Telegram tolerates (3 in a private chat): a call granted here
reaches Telegram a variable time later, and the spare token absorbs up to a second of such
jitter, so two calls spaced exactly 1 s apart here never arrive closer than Telegram allows.
"""

from __future__ import annotations

import asyncio
import datetime as dtm
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, TypedDict

from telegram.error import RetryAfter
from telegram.ext import BaseRateLimiter

logger = logging.getLogger(__name__)

JSONResult = bool | dict[str, Any] | list[dict[str, Any]]
UNLIMITED = frozenset(
    {
        "getUpdates",
        "getMe",
        "sendChatAction",
        "answerCallbackQuery",
        "setMyCommands",
        "deleteMyCommands",
        "getMyCommands",
        "setWebhook",
        "deleteWebhook",
        "getWebhookInfo",
        "logOut",
        "close",
        "getFile",
        "getChat",
    }
)


class RateLimitArgs(TypedDict, total=False):
    max_retries: int


@dataclass
class Bucket:
    """A token bucket: `capacity` calls at once, refilled at `rate` per second."""

    capacity: float
    rate: float
    tokens: float = field(init=False)
    updated: float = field(default_factory=time.monotonic)
    blocked_until: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = self.capacity

    def wait_time(self, now: float) -> float:
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if now < self.blocked_until:
            return self.blocked_until - now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        self.tokens -= 1


def retry_seconds(exc: RetryAfter) -> float:
    """A 429's retry_after in seconds (python-telegram-bot gives an int or a timedelta)."""
    value = exc.retry_after
    return value.total_seconds() if isinstance(value, dtm.timedelta) else float(value)


class ChatRateLimiter(BaseRateLimiter[RateLimitArgs]):
    """Per-chat and overall pacing of Bot API calls; 429s retried per call."""

    def __init__(
        self,
        *,
        overall_rate: float = 30.0,
        private_burst: float = 2,
        private_rate: float = 1.0,
        group_burst: float = 2,
        group_rate: float = 20 / 60,
        max_retries: int = 3,
    ) -> None:
        self._overall = Bucket(overall_rate, overall_rate)
        self._private = (private_burst, private_rate)
        self._group = (group_burst, group_rate)
        self._max_retries = max_retries
        self._chats: dict[int | str, Bucket] = {}

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""

    def _bucket(self, chat_id: int | str) -> Bucket:
        bucket = self._chats.get(chat_id)
        if bucket is None:
            group = isinstance(chat_id, str) or chat_id < 0
            bucket = self._chats[chat_id] = Bucket(*(self._group if group else self._private))
        if len(self._chats) > 10_000:  # forget idle chats (full buckets carry no state)
            now = time.monotonic()
            for key in [k for k, b in self._chats.items() if b.wait_time(now) == 0][:5_000]:
                if key != chat_id:
                    del self._chats[key]
        return bucket

    async def _acquire(self, chat_id: int | str | None) -> None:
        while True:
            now = time.monotonic()
            buckets = [self._overall] + ([self._bucket(chat_id)] if chat_id is not None else [])
            wait = max(bucket.wait_time(now) for bucket in buckets)
            if wait <= 0:
                for bucket in buckets:
                    bucket.take()
                return
            await asyncio.sleep(wait)

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, JSONResult]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: RateLimitArgs | None,
    ) -> JSONResult:
        chat_id = data.get("chat_id")
        limited = endpoint not in UNLIMITED
        retries = (rate_limit_args or {}).get("max_retries", self._max_retries)
        for attempt in range(retries + 1):
            if limited:
                await self._acquire(chat_id if isinstance(chat_id, int | str) else None)
            try:
                return await callback(*args, **kwargs)
            except RetryAfter as exc:
                seconds = retry_seconds(exc)
                if attempt >= retries:
                    raise
                logger.info("%s to chat %s: 429, retrying in %.0fs", endpoint, chat_id, seconds)
                if isinstance(chat_id, int | str):  # _acquire waits it out, for this chat only
                    self._bucket(chat_id).blocked_until = time.monotonic() + seconds
                else:
                    await asyncio.sleep(seconds)
        raise AssertionError("unreachable")
