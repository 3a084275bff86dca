"""The update log keeps only what a replay needs: a capped, compact payload while an update is
pending, ids only once it is done."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from telegram import Update

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import upgrade_to_head
from bot.db.models import UpdateLog
from bot.runtime.update_gate import UpdateGate
from bot.runtime.update_payload import MAX_PAYLOAD_BYTES, replay_payload
from bot.telegram.app import BotRuntime
from emulators.bot_api import BotAPIEmulator
from tests.conftest import SettingsFactory
from tests.e2e.chat import shows

ALICE = 1001
GROUP = -100777


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    yield engine
    await engine.dispose()


async def rows(engine: AsyncEngine) -> dict[int, UpdateLog]:
    async with create_sessionmaker(engine)() as session:
        return {r.update_id: r for r in await session.scalars(select(UpdateLog))}


def update_of(telegram: BotAPIEmulator, sent: dict[str, Any]) -> Update:
    """The Update the bot gets for a message the emulator just queued."""
    for entry in telegram.state.history.values():
        if entry.update.get("message") == sent:
            return Update.de_json(entry.update, None)
    raise KeyError(sent["message_id"])


async def test_a_done_update_keeps_only_its_ids(
    engine: AsyncEngine, telegram: BotAPIEmulator
) -> None:
    sent = telegram.send_text(
        GROUP, "my secret words", user_id=ALICE, chat_type="supergroup", username="alice_w"
    )
    gate = UpdateGate(engine, create_sessionmaker(engine))
    update = update_of(telegram, sent)
    assert await gate.record(update)
    pending = (await rows(engine))[update.update_id]
    assert (pending.chat_id, pending.user_id, pending.done) == (GROUP, ALICE, False)
    assert "my secret words" in pending.payload
    await gate.done(update.update_id)
    await gate.close()
    done = (await rows(engine))[update.update_id]
    assert (done.chat_id, done.user_id, done.done, done.payload) == (GROUP, ALICE, True, "")


def test_fields_no_handler_reads_are_left_out() -> None:
    body = {
        "update_id": 9,
        "padding": "x" * 1000,
        "message": {
            "message_id": 3,
            "date": 1_700_000_000,
            "chat": {"id": ALICE, "type": "private", "first_name": "Alice", "junk": [1, 2]},
            "from": {"id": ALICE, "is_bot": False, "first_name": "Alice", "extra": {"a": 1}},
            "text": "hi there",
            "entities": [{"type": "bold", "offset": 0, "length": 2, "future": True}],
            "brand_new_field": {"deep": "y" * 1000},
        },
    }
    update = Update.de_json(body, None)
    payload = replay_payload(update)
    for unknown in ("padding", "junk", "extra", "future", "brand_new_field"):
        assert unknown not in payload
    assert len(payload) < 400
    again = Update.de_json(json.loads(payload), None)
    assert again.message is not None and update.message is not None
    assert again.message.text == "hi there"
    assert again.message.from_user == update.message.from_user
    assert again.message.entities == update.message.entities
    assert again.message.date == update.message.date


def test_an_update_over_the_cap_is_logged_without_its_payload(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = {
        "update_id": 10,
        "message": {
            "message_id": 4,
            "date": 1_700_000_000,
            "chat": {"id": ALICE, "type": "private", "first_name": "Alice"},
            "from": {"id": ALICE, "is_bot": False, "first_name": "Alice"},
            "text": "z" * (MAX_PAYLOAD_BYTES + 1),
        },
    }
    with caplog.at_level(logging.WARNING):
        assert replay_payload(Update.de_json(body, None)) == ""
    assert "update 10 is" in caplog.text and "cannot be replayed" in caplog.text
    assert "zzz" not in caplog.text


async def test_a_replay_skips_an_update_logged_without_payload(
    make_settings: SettingsFactory,
    engine: AsyncEngine,
    telegram: BotAPIEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A killed run left two updates pending, the first too large to keep: the next start
    answers the second, skips the first with a warning and marks both done."""
    huge = telegram.send_text(ALICE, "w" * (MAX_PAYLOAD_BYTES + 10))
    small = telegram.send_text(ALICE, "hello after the big one")
    gate = UpdateGate(engine, create_sessionmaker(engine))
    for sent in (huge, small):
        assert await gate.record(update_of(telegram, sent))
    await gate.close()
    logged = await rows(engine)
    assert [logged[u].payload == "" for u in sorted(logged)] == [True, False]

    with caplog.at_level(logging.WARNING):
        async with BotRuntime(make_settings()):
            expected = "Echo: hello after the big one"
            await telegram.wait_for(lambda: shows(telegram, ALICE, expected), timeout=15)
            await telegram.wait_for(lambda: telegram.pending_updates() == 0)
    assert "was too large to keep: not replayed" in caplog.text
    assert all(r.done and r.payload == "" for r in (await rows(engine)).values())
    assert len(telegram.bot_messages(ALICE)) == 1  # the huge one was never handled twice
