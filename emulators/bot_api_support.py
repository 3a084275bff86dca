"""Plain building blocks of the Telegram Bot API emulator: records, errors, params, flood limits."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from typing import Any

from emulators.bot_api_text import words

INT_KEYS = words(
    "chat_id message_id draft_id offset limit timeout message_thread_id "
    "reply_to_message_id max_connections cache_time from_chat_id user_id"
)
BOOL_KEYS = words(
    "disable_notification protect_content show_alert drop_pending_updates "
    "disable_web_page_preview allow_sending_without_reply disable_content_type_detection"
)
JSON_KEYS = words(
    "entities caption_entities reply_parameters reply_markup link_preview_options "
    "commands scope allowed_updates"
)


class ApiError(Exception):
    """A Bot API error answer: HTTP status, Telegram's description and optional parameters."""

    def __init__(
        self,
        description: str,
        status: int = 400,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id

    def payload(self) -> dict[str, Any]:
        """The JSON body Telegram would answer with."""
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        if self.migrate_to_chat_id is not None:
            body["parameters"] = {"migrate_to_chat_id": self.migrate_to_chat_id}
        return body


def bad_request(reason: str) -> ApiError:
    """A 400 error with Telegram's ``Bad Request: `` prefix."""
    return ApiError(f"Bad Request: {reason}")


@dataclass
class ApiCall:
    """One request the bot made, as the emulator saw and answered it."""

    method: str
    params: dict[str, Any]
    status: int
    response: dict[str, Any]
    at: float


@dataclass
class ChatMessage:
    """A message the bot sent, with its current state and edit history."""

    message_id: int
    chat_id: int
    text: str
    entities: list[dict[str, Any]]
    from_bot: bool
    edits: list[str]
    reply_to_message_id: int | None = None
    deleted: bool = False
    document: bytes | None = None
    file_name: str | None = None
    reply_markup: dict[str, Any] | None = None
    message_thread_id: int | None = None  # the forum topic it was sent to


@dataclass(frozen=True)
class UploadedFile:
    """A file that arrived as a multipart part."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class Fault:
    """A scripted answer (or dropped connection) for the next matching call(s)."""

    method: str
    count: int
    status: int = 0
    description: str = ""
    retry_after: int | None = None
    chat_id: int | None = None

    def matches(self, method: str, params: dict[str, Any]) -> bool:
        """Whether this fault applies to a call of ``method`` with ``params``."""
        if self.method.lower() != method.lower() or self.count <= 0:
            return False
        return self.chat_id is None or params.get("chat_id") == self.chat_id


def normalize_params(raw: dict[str, Any]) -> dict[str, Any]:
    """Decode form strings: ints, booleans and JSON-encoded complex values."""
    params: dict[str, Any] = {}
    for key, value in raw.items():
        params[key] = _normalize_value(key, value)
    return params


def _normalize_value(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in INT_KEYS:
        try:
            return int(value)
        except ValueError:
            return value
    if key in BOOL_KEYS:
        return value.strip().lower() in ("true", "1")
    if key in JSON_KEYS:
        try:
            return json.loads(value)
        except ValueError as exc:
            raise ApiError(f"Bad Request: can't parse {key} JSON object") from exc
    return value


@dataclass
class TokenBucket:
    """Classic token bucket; ``wait`` tells how long until one token is available."""

    capacity: float
    rate: float
    tokens: float = -1.0
    stamp: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def _refill(self, now: float) -> None:
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def wait(self, now: float) -> float:
        """Seconds until a token can be taken (0 when one is available now)."""
        self._refill(now)
        if self.tokens >= 1:
            return 0.0
        return (1 - self.tokens) / self.rate if self.rate > 0 else math.inf

    def take(self) -> None:
        """Consume one token (call only after ``wait`` returned 0)."""
        self.tokens -= 1


@dataclass
class FloodLimiter:
    """Per-chat and global buckets, answering like Telegram's flood control."""

    enabled: bool
    private_burst: int
    private_rate: float
    group_burst: int
    group_rate: float
    global_rate: float
    chats: dict[int, TokenBucket] = field(default_factory=dict)
    overall: TokenBucket | None = None

    def check(self, chat_id: int, is_private: bool) -> None:
        """Consume one token for ``chat_id`` or raise a 429 ApiError consuming nothing."""
        if not self.enabled:
            return
        now = time.monotonic()
        bucket = self.chats.get(chat_id)
        if bucket is None:
            burst, rate = (
                (self.private_burst, self.private_rate)
                if is_private
                else (self.group_burst, self.group_rate)
            )
            bucket = self.chats[chat_id] = TokenBucket(burst, rate, stamp=now)
        if self.overall is None:
            self.overall = TokenBucket(self.global_rate, self.global_rate, stamp=now)
        wait = max(bucket.wait(now), self.overall.wait(now))
        if wait > 0:
            retry = max(1, math.ceil(wait)) if math.isfinite(wait) else 3600
            raise ApiError(f"Too Many Requests: retry after {retry}", 429, retry)
        bucket.take()
        self.overall.take()
