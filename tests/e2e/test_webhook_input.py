"""Webhook bodies that are not Telegram updates, over real HTTP: refused before anything is
recorded (413 past the size cap, 400 for the rest), and the bot goes on answering."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from bot.config import Settings
from bot.db.engine import create_engine
from bot.db.models import UpdateLog
from bot.runtime.webhook_body import MAX_BODY_BYTES
from bot.telegram.app import BotRuntime
from emulators.bot_api import BotAPIEmulator
from emulators.bot_api_webhook import SECRET_HEADER
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask
from tests.e2e.web import SECRET, webhook_settings

CHAT = 5151
Served = tuple[Settings, httpx.AsyncClient]
HEADERS = {SECRET_HEADER: SECRET, "Content-Type": "application/json"}


async def logged_updates(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            count = await conn.execute(select(func.count()).select_from(UpdateLog))
            return int(count.scalar_one())
    finally:
        await engine.dispose()


@pytest.fixture
async def served(
    make_settings: SettingsFactory,
) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    settings = webhook_settings(make_settings)
    async with BotRuntime(settings), httpx.AsyncClient(timeout=30) as http:
        yield settings, http


def message(telegram: BotAPIEmulator, text: str) -> dict[str, Any]:
    user = {"id": CHAT, "is_bot": False, "first_name": "Mallory"}
    telegram.state.ensure_chat(CHAT, "private", None, user)
    return telegram.state.build_message(CHAT, user, None, {"text": text})


async def refused_then_still_answering(
    served: Served,
    telegram: BotAPIEmulator,
    database_url: str,
    body: bytes,
    status: int,
) -> None:
    settings, http = served
    response = await http.post(settings.webhook_url, content=body, headers=HEADERS)
    assert response.status_code == status
    assert await logged_updates(database_url) == 0, "nothing reached update_log"
    assert not telegram.calls_for("sendMessage")
    await ask(telegram, CHAT, "still there?")


def nested(depth: int) -> bytes:
    return b'{"update_id": 1, "x": ' + b"[" * depth + b"]" * depth + b"}"


BAD_BODIES = {
    "update_id is a string": {"update_id": "abc"},
    "update_id is a bool": {"update_id": True},
    "update_id is negative": {"update_id": -5},
    "update_id overflows BIGINT": {"update_id": 2**63},
    "no update_id": {"message": {"text": "hi"}},
    "message is not an object": {"update_id": 9, "message": "hello"},
    "callback_query is a list": {"update_id": 9, "callback_query": [1, 2]},
    "message without chat": {"update_id": 9, "message": {"message_id": 1, "date": 0}},
}


@pytest.mark.parametrize("name", list(BAD_BODIES))
async def test_a_body_that_is_not_a_valid_update_is_a_400_and_records_nothing(
    served: Served,
    telegram: BotAPIEmulator,
    database_url: str,
    name: str,
) -> None:
    body = json.dumps(BAD_BODIES[name]).encode()
    await refused_then_still_answering(served, telegram, database_url, body, 400)


async def test_a_string_chat_id_is_a_400(
    served: Served, telegram: BotAPIEmulator, database_url: str
) -> None:
    update: dict[str, Any] = {"update_id": 10, "message": message(telegram, "typed wrong")}
    update["message"]["chat"]["id"] = "abc"
    body = json.dumps(update).encode()
    await refused_then_still_answering(served, telegram, database_url, body, 400)


@pytest.mark.parametrize(
    "body", [b"[]", b"[1, 2]", b"null", b"42", b'"text"', b"", b"{not json"], ids=repr
)
async def test_a_body_that_is_not_an_object_is_a_400(
    served: Served,
    telegram: BotAPIEmulator,
    database_url: str,
    body: bytes,
) -> None:
    await refused_then_still_answering(served, telegram, database_url, body, 400)


@pytest.mark.parametrize("depth", [100_000, 500, 65])
async def test_deep_nesting_is_a_400_not_a_recursion_error(
    served: Served,
    telegram: BotAPIEmulator,
    database_url: str,
    depth: int,
) -> None:
    await refused_then_still_answering(served, telegram, database_url, nested(depth), 400)


async def test_a_body_over_the_cap_is_a_413(
    served: Served, telegram: BotAPIEmulator, database_url: str
) -> None:
    update = {"update_id": 11, "message": message(telegram, "x" * MAX_BODY_BYTES)}
    body = json.dumps(update).encode()
    await refused_then_still_answering(served, telegram, database_url, body, 413)


async def test_a_chunked_body_growing_past_the_cap_is_a_413(
    served: Served, telegram: BotAPIEmulator, database_url: str
) -> None:
    settings, http = served
    update = {"update_id": 12, "message": message(telegram, "y" * MAX_BODY_BYTES)}
    body = json.dumps(update).encode()

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: Transfer-Encoding chunked
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    response = await http.post(settings.webhook_url, content=chunks(), headers=HEADERS)
    assert response.status_code == 413
    assert "content-length" not in response.request.headers
    assert await logged_updates(database_url) == 0
    await ask(telegram, CHAT, "still there?")


async def test_a_valid_update_just_under_the_cap_and_nesting_limit_is_taken(
    served: Served, telegram: BotAPIEmulator, database_url: str
) -> None:
    settings, http = served
    update: dict[str, Any] = {"update_id": 13, "message": message(telegram, "big but fine")}
    update["message"]["unknown_future_field"] = json.loads("[" * 50 + "]" * 50)
    update["message"]["padding"] = "z" * (MAX_BODY_BYTES - 4096)
    response = await http.post(settings.webhook_url, content=json.dumps(update), headers=HEADERS)
    assert response.status_code == 200
    await telegram.wait_for(lambda: bool(telegram.calls_for("sendMessage")))
    assert await logged_updates(database_url) == 1
