"""Reading a webhook request body into an `Update`, refusing anything Telegram would not send.

The body is capped before it is parsed (a Content-Length over the cap, or a chunked body that
grows past it: 413), parsed without letting deep nesting reach the recursion limit, and checked
for the shape the rest of the bot relies on before python-telegram-bot sees it: an object whose
`update_id` is a non-negative integer, whose update fields (`message`, `callback_query`, …) are
objects, and whose messages have integer ids and a chat with one. Anything else is a 400 and
nothing is recorded.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from telegram import Bot, Update

MAX_BODY_BYTES = 1024 * 1024  # a Telegram update is a few KiB; the largest are well under this
MAX_DEPTH = 64  # real updates nest about a dozen levels (message → reply_to_message → …)
MAX_ID = 2**63 - 1  # ids are stored in BIGINT columns
MESSAGE_KINDS = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
)


class RejectedBody(Exception):
    """The body is not an update we take; `status` is the HTTP answer, `reason` the metric."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def read_update(request: Request, bot: Bot) -> Update:
    """The update in the request body, or `RejectedBody`."""
    data = _parse(await _read_capped(request))
    _check_shape(data)
    try:
        return Update.de_json(data, bot)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise RejectedBody(400, "malformed") from exc


async def _read_capped(request: Request) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.strip().isdigit() and int(declared) > MAX_BODY_BYTES:
        raise RejectedBody(413, "too_large")
    body = bytearray()
    async for chunk in request.stream():
        body.extend(chunk)
        if len(body) > MAX_BODY_BYTES:
            raise RejectedBody(413, "too_large")
    return bytes(body)


def _parse(body: bytes) -> Any:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: nesting past ~1,000 levels
        raise RejectedBody(400, "malformed") from exc
    if _depth(data) > MAX_DEPTH:
        raise RejectedBody(400, "malformed")
    return data


def _depth(value: Any) -> int:
    """How deeply `value` nests, counted without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level > MAX_DEPTH:
                break
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


def _check_shape(data: Any) -> None:
    if not isinstance(data, dict) or not _is_id(data.get("update_id"), signed=False):
        raise RejectedBody(400, "malformed")
    for kind in Update.ALL_TYPES:
        if kind in data and not isinstance(data[kind], dict):
            raise RejectedBody(400, "malformed")
    for kind in MESSAGE_KINDS:
        if kind in data:
            _check_message(data[kind])
    query = data.get("callback_query")
    if isinstance(query, dict) and "message" in query:
        _check_message(query["message"])


def _check_message(message: Any) -> None:
    """A message has an integer id and a chat object with an integer id."""
    chat = message.get("chat") if isinstance(message, dict) else None
    if not (
        isinstance(chat, dict)
        and _is_id(chat.get("id"), signed=True)
        and _is_id(message.get("message_id"), signed=False)
    ):
        raise RejectedBody(400, "malformed")


def _is_id(value: object, *, signed: bool) -> bool:
    """An integer id (bool is not one) that fits a BIGINT; non-negative unless `signed`."""
    if not isinstance(value, int) or isinstance(value, bool):
        return False
    return (-MAX_ID if signed else 0) <= value <= MAX_ID
