"""Load: 200 private chats send 5 messages each, all at once, against Telegram's flood limits.

Runs on whichever database the fixture provides (SQLite, or PostgreSQL with DATABASE_URL).
Replies are short and arrive in one chunk, so each turn costs one Telegram message and the
test is bound by Telegram's ~30 messages/s overall limit, as a real bot would be.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from sqlalchemy import select

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Message, Status
from bot.telegram.app import BotRuntime
from bot.values import Role
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory

CHATS = 200
TURNS = 5
FIRST_CHAT = 10_000


def question(chat_id: int, turn: int) -> str:
    return f"chat {chat_id} turn {turn}"


def answer_in_one_chunk(body: dict[str, Any]) -> Reply:
    return Reply(text=f"Echo: {body['messages'][-1]['content']}", chunk_chars=1000)


def shown(telegram: BotAPIEmulator) -> int:
    return sum(len(messages) for messages in telegram.state.bot_messages.values())


async def stored_by_chat(database_url: str) -> dict[int, list[tuple[str, str, str]]]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(Message.chat_id, Message.role, Message.content, Message.status).order_by(
                    Message.id
                )
            )
            found: dict[int, list[tuple[str, str, str]]] = {}
            for chat_id, role, content, status in rows:
                found.setdefault(chat_id, []).append((role, content, status))
            return found
    finally:
        await engine.dispose()


def expected_history(chat_id: int, turns: int) -> list[dict[str, str]]:
    history = []
    for turn in range(turns):
        history.append({"role": "user", "content": question(chat_id, turn)})
        history.append({"role": "assistant", "content": f"Echo: {question(chat_id, turn)}"})
    return history


async def test_200_chats_times_5_turns_at_once_are_all_answered_with_complete_ordered_histories(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    model.responder = answer_in_one_chunk
    chats = range(FIRST_CHAT, FIRST_CHAT + CHATS)
    async with BotRuntime(make_settings(edit_interval=0.2)):
        for turn in range(TURNS):
            for chat_id in chats:
                telegram.send_text(chat_id, question(chat_id, turn))
        await telegram.wait_for(lambda: shown(telegram) >= CHATS * TURNS, timeout=180)

    for chat_id in chats:
        shown_texts = [m.text for m in telegram.bot_messages(chat_id)]
        assert shown_texts == [f"Echo: {question(chat_id, t)}" for t in range(TURNS)], (
            chat_id,
            shown_texts,
        )

    stored = await stored_by_chat(database_url)
    assert sorted(stored) == list(chats)
    for chat_id in chats:
        expected = [
            (m["role"], m["content"], Status.COMPLETE) for m in expected_history(chat_id, 5)
        ]
        assert stored[chat_id] == expected, f"history of chat {chat_id}"

    requests = model.chat_requests()
    assert len(requests) == CHATS * TURNS, "each turn asked the model once"
    for request in requests:
        last = request["messages"][-1]["content"]
        chat_id, turn = (int(word) for word in last.split()[1::2])
        assert request["messages"][1:-1] == expected_history(chat_id, turn), last
        assert request["messages"][-1]["role"] == Role.USER

    problems = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert problems == [], "no errors, in particular no 'database is locked'"
    assert not any("locked" in r.getMessage() for r in caplog.records)
