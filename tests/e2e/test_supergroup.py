"""A group upgraded to a supergroup keeps its memory, prompt, profile and settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select
from telegram import Bot
from telegram.error import ChatMigrated

from bot.db import store
from bot.db.chat_migration import Moved, move_chat
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import upgrade_to_head
from bot.db.models import Audit, Chat, Conversation, Message, UpdateLog
from bot.telegram.app import BotRuntime
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from tests.conftest import SettingsFactory
from tests.e2e.chat import shows

ADMIN = 7
ALICE = 1001
BOB = 2002
GROUP = -4242
SUPERGROUP = -1004242
PROFILES = {"smart": {"model": "gpt-4o"}}


@pytest.fixture
async def bot(make_settings: SettingsFactory) -> AsyncIterator[BotRuntime]:
    settings = make_settings(admin_user_ids=frozenset({ADMIN}), model_profiles=PROFILES)
    async with BotRuntime(settings) as runtime:
        yield runtime


def chat_type(chat_id: int) -> str:
    return "supergroup" if chat_id == SUPERGROUP else "group"


async def say(telegram: BotAPIEmulator, chat_id: int, text: str, user_id: int = ALICE) -> str:
    """Send a line in a group and return the bot's answer to it."""
    before = len(telegram.bot_messages(chat_id))
    name = "Alice" if user_id == ALICE else "Bob"
    telegram.send_text(
        chat_id, text, user_id=user_id, first_name=name, chat_type=chat_type(chat_id)
    )
    await telegram.wait_for(lambda: len(telegram.bot_messages(chat_id)) > before, timeout=15)
    if text.startswith("/"):
        return telegram.bot_messages(chat_id)[before].text
    expected = f"Echo: {name}: {text.removeprefix('@memory_test_bot ')}"
    await telegram.wait_for(lambda: shows(telegram, chat_id, expected), timeout=15)
    return expected


async def query(database_url: str, statement: Any) -> Any:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return (await session.execute(statement)).all()
    finally:
        await engine.dispose()


async def settled(telegram: BotAPIEmulator, database_url: str) -> None:
    """Wait until every queued update was fetched and is done in the update log."""
    await telegram.wait_for(lambda: telegram.pending_updates() == 0)
    for _ in range(200):
        pending = await query(
            database_url, select(func.count()).select_from(UpdateLog).where(~UpdateLog.done)
        )
        if pending[0][0] == 0:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("updates stayed pending")


async def configure_old_group(telegram: BotAPIEmulator) -> None:
    for line in (
        "/setprompt You are the group's pirate.",
        "/set temperature 0.7",
        "/set stop ###",
        "/profile smart",
        "/summary off",
    ):
        assert "Usage" not in await say(telegram, GROUP, line, ADMIN)
    await say(telegram, GROUP, "@memory_test_bot remember the word pineapple")


async def ask_in_supergroup(telegram: BotAPIEmulator, model: OpenAIEmulator) -> dict[str, Any]:
    await say(telegram, SUPERGROUP, "@memory_test_bot which word?")
    request: dict[str, Any] = model.chat_requests()[-1]
    return request


def contents(request: dict[str, Any]) -> list[str]:
    return [str(m["content"]) for m in request["messages"]]


def assert_carried_over(request: dict[str, Any]) -> None:
    said = contents(request)
    assert said[0] == "You are the group's pirate."
    assert "Alice: remember the word pineapple" in said
    assert "Echo: Alice: remember the word pineapple" in said
    assert said[-1] == "Alice: which word?"
    assert (request["model"], request["temperature"], request["stop"]) == ("gpt-4o", 0.7, ["###"])


@pytest.mark.parametrize("supergroup_first", [False, True], ids=["old-first", "new-first"])
async def test_memory_and_settings_follow_the_group_into_the_supergroup(
    bot: BotRuntime,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
    supergroup_first: bool,
) -> None:
    await configure_old_group(telegram)
    await say(telegram, GROUP, "/allowchat", ADMIN)  # the allowlist is in use from now on
    telegram.upgrade_to_supergroup(GROUP, SUPERGROUP, supergroup_first=supergroup_first)
    await settled(telegram, database_url)

    assert_carried_over(await ask_in_supergroup(telegram, model))  # allowed there, too
    chats = await query(
        database_url, select(Chat.id, Chat.summary_enabled, Chat.is_allowed, Chat.type)
    )
    assert chats == [(SUPERGROUP, False, True, "supergroup")]  # the old row went
    assert await query(database_url, select(Message.id).where(Message.chat_id == GROUP)) == []
    moves = await query(database_url, select(Audit.target).where(Audit.action == "migrate_chat"))
    assert moves == [(str(SUPERGROUP),)]  # moved once, though both service messages came


async def test_the_service_messages_twice_move_nothing_more(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    await configure_old_group(telegram)
    in_group, in_supergroup = telegram.upgrade_to_supergroup(GROUP, SUPERGROUP)
    await settled(telegram, database_url)
    first = await ask_in_supergroup(telegram, model)
    telegram.send_again(in_supergroup)
    telegram.send_again(in_group)
    await settled(telegram, database_url)

    second = await ask_in_supergroup(telegram, model)
    assert_carried_over(second)
    assert contents(second)[: len(contents(first))] == contents(first)  # same history, once
    conversations = await query(database_url, select(Conversation.chat_id))
    assert conversations == [(SUPERGROUP,)]


async def test_settings_merge_and_a_head_start_in_the_supergroup_joins_the_history(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    """The supergroup was used (own temperature, a turn) before the old group's message was
    handled: its own settings win, the old ones fill the rest, both histories are one."""
    await configure_old_group(telegram)
    await say(telegram, SUPERGROUP, "/set temperature 0.2", ADMIN)
    await say(telegram, SUPERGROUP, "@memory_test_bot early bird", BOB)
    telegram.upgrade_to_supergroup(GROUP, SUPERGROUP)
    await settled(telegram, database_url)

    request = await ask_in_supergroup(telegram, model)
    said = contents(request)
    assert said[0] == "You are the group's pirate."
    assert (request["temperature"], request["model"]) == (0.2, "gpt-4o")
    order = [s for s in said if "pineapple" in s or "early bird" in s or "which word" in s]
    assert order == [
        "Alice: remember the word pineapple",
        "Echo: Alice: remember the word pineapple",
        "Bob: early bird",
        "Echo: Bob: early bird",
        "Alice: which word?",
    ]


async def test_a_send_to_the_upgraded_group_raises_chat_migrated(
    telegram: BotAPIEmulator,
) -> None:
    telegram.send_text(GROUP, "hello", user_id=ALICE, chat_type="group")
    telegram.upgrade_to_supergroup(GROUP, SUPERGROUP)
    async with Bot(telegram.token, base_url=telegram.base_url) as bot:
        with pytest.raises(ChatMigrated) as raised:
            await bot.send_message(GROUP, "still there?")
        assert raised.value.new_chat_id == SUPERGROUP
        sent = await bot.send_message(SUPERGROUP, "here")
        assert sent.chat.id == SUPERGROUP
    assert telegram.calls_for("sendMessage")[0].response["description"] == (
        "Bad Request: group chat was upgraded to a supergroup chat"
    )


async def test_two_moves_at_once_move_everything_once(database_url: str) -> None:
    """Both service messages are handled at the same moment (two chats run concurrently): one
    transaction moves, the other waits and finds nothing; the supergroup's own message with a
    colliding Telegram id stays as it is."""
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
        sessions = create_sessionmaker(engine)
        async with sessions.begin() as session:
            await store.upsert_chat(session, store.ChatInfo(GROUP, "group", "G"))
            await store.upsert_chat(session, store.ChatInfo(SUPERGROUP, "supergroup", "G"))
            old = await store.open_conversation(session, GROUP, None)
            new = await store.open_conversation(session, SUPERGROUP, None)
            for conversation, chat, telegram_id in ((old, GROUP, 1), (new, SUPERGROUP, 1)):
                await store.add_message(
                    session,
                    conversation_id=conversation,
                    chat_id=chat,
                    role="user",
                    content=f"in {chat}",
                    token_count=3,
                    status="complete",
                    telegram_message_id=telegram_id,
                )

        async def move() -> Moved:
            async with sessions.begin() as session:
                return await move_chat(session, GROUP, SUPERGROUP, "G")

        results = await asyncio.gather(move(), move())
        assert sorted(r.messages for r in results) == [0, 1]
        rows = await query(
            database_url,
            select(Message.chat_id, Message.conversation_id, Message.telegram_message_id).order_by(
                Message.id
            ),
        )
        assert rows == [(SUPERGROUP, old, None), (SUPERGROUP, old, 1)]
        assert await query(database_url, select(Conversation.id)) == [(old,)]
    finally:
        await engine.dispose()
