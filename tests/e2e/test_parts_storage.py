"""Message content parts in the database: stored in order, read back for prompts, sent to the
model as each API mode takes them; text messages get no part rows; the 0009 migration keeps
the Telegram delivery rows it renames."""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from sqlalchemy import Connection, func, select, text

from bot.db import store, userdata
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import alembic_config, upgrade_to_head
from bot.db.models import Message, MessageContent, Status
from bot.llm.tokens import TokenCounter
from bot.parts import (
    AudioTranscriptPart,
    FileRef,
    ImagePart,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from bot.telegram.app import BotRuntime
from bot.values import ChatInfo, Role, UserInfo
from emulators.bot_api import BotAPIEmulator
from emulators.media_samples import image_bytes
from emulators.openai_api import OpenAIEmulator
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, stored_messages

ALICE = 1001
COUNTER = TokenCounter("gpt-4o-mini")
JPEG = image_bytes(800, 600)  # a real JPEG, binary (NUL bytes included): strict servers decode it
assert b"\x00" in JPEG
PHOTO: tuple[Part, ...] = (
    TextPart("What is this?"),
    ImagePart(
        JPEG, text="a red bicycle", width=800, height=600, file=FileRef("AgAC", "AQAD", 4096)
    ),
)
TOOL_CALL: tuple[Part, ...] = (
    TextPart("Checking."),
    ToolCallPart("call_1", "get_time", '{"zone": "UTC"}'),
)
TOOL_RESULT: tuple[Part, ...] = (ToolResultPart("call_1", "12:00", name="get_time"),)


async def _add(
    session: Any,
    conversation_id: int,
    role: str,
    parts: tuple[Part, ...],
    counter: TokenCounter = COUNTER,
) -> int:
    counted = counter.counted(parts)
    return await store.add_message(
        session,
        parts=counted,
        conversation_id=conversation_id,
        chat_id=ALICE,
        user_id=ALICE if role == Role.USER else None,
        role=role,
        token_count=COUNTER.count_content(role, counted),
        status=Status.COMPLETE,
    )


async def _conversation(session: Any) -> int:
    await store.upsert_user(session, UserInfo(ALICE, "Alice"))
    await store.upsert_chat(session, ChatInfo(ALICE))
    return await store.open_conversation(session, ALICE, None)


async def test_parts_are_stored_in_order_and_read_back_for_the_prompt(database_url: str) -> None:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions.begin() as session:
            conversation = await _conversation(session)
            photo = await _add(session, conversation, Role.USER, PHOTO)
            plain = await _add(session, conversation, Role.ASSISTANT, (TextPart("A bicycle."),))
            voice = (AudioTranscriptPart("And its colour?", "audio/ogg", 1.2),)
            spoken = await _add(session, conversation, Role.USER, voice)
        async with sessions() as session:
            items = [
                item async for item in store.history_newest_first(session, conversation, 10**9)
            ]
            rows = (await session.execute(select(Message).order_by(Message.id))).scalars().all()
            content_rows = await session.scalar(select(func.count()).select_from(MessageContent))
    finally:
        await engine.dispose()
    assert [item.id for item in items] == [spoken, plain, photo]
    assert items[2].parts == COUNTER.counted(PHOTO), "bytes, file ids and sizes survive"
    assert items[2].content == "What is this?\n\na red bicycle"
    assert items[2].tokens == COUNTER.count_content(Role.USER, COUNTER.counted(PHOTO))
    assert items[1].parts == () and items[1].content == "A bicycle."
    assert items[0].parts == COUNTER.counted(voice)
    assert [row.has_parts for row in rows] == [True, False, True]
    assert content_rows == len(PHOTO) + 1, "a text message has no part rows"


async def test_a_text_turn_stores_no_part_rows(
    bot: BotRuntime, telegram: BotAPIEmulator, database_url: str
) -> None:
    await ask(telegram, ALICE, "Just text, please.")
    stored = await stored_messages(database_url, ALICE)
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            count = await session.scalar(select(func.count()).select_from(MessageContent))
    finally:
        await engine.dispose()
    assert [m.content for m in stored] == ["Just text, please.", "Echo: Just text, please."]
    assert not any(m.has_parts for m in stored)
    assert count == 0


async def _store_rich_history(database_url: str) -> None:
    """An image question, a tool call and its result, then a text answer, after the first turn."""
    [first, _] = await stored_messages(database_url, ALICE)
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            for role, parts in (
                (Role.USER, PHOTO),
                (Role.ASSISTANT, TOOL_CALL),
                (Role.TOOL, TOOL_RESULT),
                (Role.ASSISTANT, (TextPart("It is noon; that is a red bicycle."),)),
            ):
                # Counted for gpt-4o, the model the tests below talk to.
                await _add(session, first.conversation_id, role, parts, TokenCounter("gpt-4o"))
    finally:
        await engine.dispose()


async def test_stored_parts_reach_the_chat_api_as_content_arrays_and_tool_messages(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    # gpt-4o: the image fits the budget (gpt-4o-mini's count would turn it into its text form)
    async with BotRuntime(make_settings(model="gpt-4o")):
        await ask(telegram, ALICE, "Hello.")
        await _store_rich_history(database_url)
        await ask(telegram, ALICE, "Thanks!")

    sent = model.chat_requests()[-1]["messages"]
    image = PHOTO[1]
    assert isinstance(image, ImagePart)
    assert sent[3:] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": image.data_url, "detail": "auto"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": '{"zone": "UTC"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "12:00"},
        {"role": "assistant", "content": "It is noon; that is a red bicycle."},
        {"role": "user", "content": "Thanks!"},
    ]
    assert sent[1:3] == [
        {"role": "user", "content": "Hello."},
        {"role": "assistant", "content": "Echo: Hello."},
    ], "plain messages stay plain strings"


async def test_stored_parts_reach_the_responses_api_as_input_items(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    async with BotRuntime(make_settings(openai_api="responses", model="gpt-4o")):
        await ask(telegram, ALICE, "Hello.")
        await _store_rich_history(database_url)
        await ask(telegram, ALICE, "Thanks!")

    sent = model.bodies("/v1/responses")[-1]["input"]
    image = PHOTO[1]
    assert isinstance(image, ImagePart)
    assert sent[2:] == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is this?"},
                {"type": "input_image", "image_url": image.data_url, "detail": "auto"},
            ],
        },
        {"role": "assistant", "content": "Checking."},
        {
            "type": "function_call",
            "call_id": "call_1",
            "name": "get_time",
            "arguments": '{"zone": "UTC"}',
        },
        {"type": "function_call_output", "call_id": "call_1", "output": "12:00"},
        {"role": "assistant", "content": "It is noon; that is a red bicycle."},
        {"role": "user", "content": "Thanks!"},
    ]


async def test_forgetting_a_user_deletes_the_parts_of_their_messages(database_url: str) -> None:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    sessions = create_sessionmaker(engine)
    try:
        async with sessions.begin() as session:
            await _add(session, await _conversation(session), Role.USER, PHOTO)
        async with sessions.begin() as session:
            assert await userdata.forget_user(session, ALICE) == 1
        async with sessions() as session:
            left = await session.scalar(select(func.count()).select_from(MessageContent))
    finally:
        await engine.dispose()
    assert left == 0


@pytest.mark.parametrize("way", ["upgrade", "downgrade"])
async def test_delivery_rows_survive_the_rename_of_message_parts(
    database_url: str, way: str
) -> None:
    def migrate(connection: Connection, target: str, down: bool = False) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(cfg, target)

    def seed(connection: Connection) -> None:
        for statement in (
            "INSERT INTO chats (id, type) VALUES (1001, 'private')",
            "INSERT INTO conversations (id, chat_id) VALUES (1, 1001)",
            "INSERT INTO messages (id, conversation_id, chat_id, role, content, token_count,"
            " status) VALUES (7, 1, 1001, 'assistant', 'a long reply', 9, 'complete')",
            "INSERT INTO message_parts (message_id, position, telegram_message_id)"
            " VALUES (7, 0, 500), (7, 1, 501)",
        ):
            connection.execute(text(statement))

    def read(connection: Connection, table: str) -> list[tuple[Any, ...]]:
        query = f"SELECT message_id, position, telegram_message_id FROM {table} ORDER BY position"
        return [tuple(row) for row in connection.execute(text(query))]

    engine = create_engine(database_url)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(migrate, "0006")
            await conn.run_sync(seed)
        async with engine.begin() as conn:
            await conn.run_sync(migrate, "0009")
            deliveries = await conn.run_sync(read, "message_deliveries")
            flags = (await conn.execute(text("SELECT has_parts FROM messages"))).scalars().all()
        assert deliveries == [(7, 0, 500), (7, 1, 501)]
        assert [bool(flag) for flag in flags] == [False], "existing messages are text"
        if way == "downgrade":
            async with engine.begin() as conn:
                await conn.run_sync(migrate, "0006", True)
                assert await conn.run_sync(read, "message_parts") == deliveries
    finally:
        await engine.dispose()
