"""After a crash the restarted bot settles each unfinished reply: what was shown is stored and
ended with a notice; a reply nothing was shown of is written again. No fragment is left."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Message, MessageDelivery, Status
from bot.notices import Code
from bot.telegram.app import BotRuntime
from bot.values import Role
from bot.wording import render
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import shows, stored_messages
from tests.e2e.test_restart import STORY, bot_environment, bot_process
from tests.e2e.web import webhook_settings

RESTART_NOTICE = render(Code.RESTARTED)

ALICE = 1001
FORUM = -100777
TOPIC = 11


async def parts_of(database_url: str, message_id: int) -> list[int]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.scalars(
                select(MessageDelivery.telegram_message_id)
                .where(MessageDelivery.message_id == message_id)
                .order_by(MessageDelivery.position)
            )
            return list(rows)
    finally:
        await engine.dispose()


async def first_message_stored(database_url: str, chat_id: int) -> None:
    """Wait until the reply streaming in the chat has its first Telegram message stored.

    Telegram shows a message before the bot learns its id: a kill within those milliseconds
    cannot be helped (the restart then answers again); these tests kill just after them.
    """
    engine = create_engine(database_url)
    try:
        async with asyncio.timeout(60):
            while True:
                found = None
                with contextlib.suppress(DBAPIError):  # the bot has not made its tables yet
                    async with create_sessionmaker(engine)() as session:
                        found = await session.scalar(
                            select(MessageDelivery.message_id)
                            .join(Message, Message.id == MessageDelivery.message_id)
                            .where(Message.chat_id == chat_id, Message.status == Status.PENDING)
                        )
                if found is not None:
                    return
                await asyncio.sleep(0.02)
    finally:
        await engine.dispose()


async def test_a_reply_killed_after_its_first_text_is_stored_and_ended_with_a_notice(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    env = bot_environment(database_url, telegram, model)
    model.enqueue(Reply(text=STORY, chunk_chars=6, chunk_delay=0.25))
    async with bot_process(env, tmp_path / "bot.log") as first:
        telegram.send_text(ALICE, "tell me a long story")
        await first_message_stored(database_url, ALICE)
        first.send_signal(signal.SIGKILL)  # right after the first text was shown
        await first.wait()
    [fragment] = telegram.bot_messages(ALICE)
    seen = fragment.text
    async with bot_process(env, tmp_path / "bot.log") as second:
        await telegram.wait_for(
            lambda: telegram.bot_messages(ALICE)[0].text.endswith(RESTART_NOTICE), timeout=60
        )
        telegram.send_text(ALICE, "are you back?")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: are you back?"), 30)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0
    stored = await stored_messages(database_url, ALICE)
    reply = stored[1]
    assert (reply.role, reply.status) == (Role.ASSISTANT, Status.INTERRUPTED)
    assert reply.content.startswith(seen), "everything the user saw is stored"
    assert await parts_of(database_url, reply.id) == [fragment.message_id]
    assert reply.telegram_message_id == fragment.message_id
    shown = telegram.bot_messages(ALICE)[0].text
    assert shown == f"{reply.content}\n\n{RESTART_NOTICE}", "the chat shows what is stored"
    assert len(telegram.bot_messages(ALICE)) == 2, "the story is not told again"


async def test_a_reply_killed_before_any_text_is_answered_again_in_its_topic(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    env = bot_environment(database_url, telegram, model)
    model.enqueue(Reply(text="never shown", first_token_delay=60))
    question = telegram.send_text(
        FORUM,
        f"@{telegram.bot_username} what now?",
        chat_type="supergroup",
        user_id=ALICE,
        message_thread_id=TOPIC,
    )
    async with bot_process(env, tmp_path / "bot.log") as first:
        await telegram.wait_for(lambda: bool(model.chat_requests()), timeout=60)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    telegram.send_text(
        FORUM,
        f"@{telegram.bot_username} and then?",
        chat_type="supergroup",
        user_id=ALICE,
        message_thread_id=TOPIC,
    )
    async with bot_process(env, tmp_path / "bot.log") as second:
        await telegram.wait_for(lambda: shows(telegram, FORUM, "Echo: Alice: and then?"), 60)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0
    again, then = telegram.bot_messages(FORUM)
    assert again.text == "Echo: Alice: what now?", "answered again, before the next message"
    assert again.reply_to_message_id == question["message_id"]
    assert again.message_thread_id == then.message_thread_id == TOPIC
    stored = await stored_messages(database_url, FORUM)
    assert [(m.role, m.status) for m in stored] == [
        (Role.USER, Status.COMPLETE),
        (Role.ASSISTANT, Status.FAILED),
        (Role.ASSISTANT, Status.COMPLETE),
        (Role.USER, Status.COMPLETE),
        (Role.ASSISTANT, Status.COMPLETE),
    ]
    assert [r["messages"][-1]["content"] for r in model.chat_requests()] == [
        "Alice: what now?",
        "Alice: what now?",
        "Alice: and then?",
    ], "each question reached the model once more at most"


async def test_a_fragment_the_user_deleted_does_not_stop_the_start_up(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    env = bot_environment(database_url, telegram, model)
    model.enqueue(Reply(text=STORY, chunk_chars=6, chunk_delay=0.25))
    async with bot_process(env, tmp_path / "bot.log") as first:
        telegram.send_text(ALICE, "tell me a long story")
        await first_message_stored(database_url, ALICE)
        first.send_signal(signal.SIGKILL)
        await first.wait()
    [fragment] = telegram.bot_messages(ALICE)
    telegram.state.deleted.add((ALICE, fragment.message_id))  # the user deleted it meanwhile
    fragment.deleted = True
    async with bot_process(env, tmp_path / "bot.log") as second:
        telegram.send_text(ALICE, "still there?")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: still there?"), 60)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0
    stored = await stored_messages(database_url, ALICE)
    assert stored[1].status == Status.INTERRUPTED
    visible = [m for m in telegram.bot_messages(ALICE) if not m.deleted]
    assert visible[0].text == f"{stored[1].content}\n\n{RESTART_NOTICE}"
    assert await parts_of(database_url, stored[1].id) == [visible[0].message_id]


async def test_a_replica_starting_leaves_replies_other_replicas_may_still_stream(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, database_url: str
) -> None:
    """Webhook replicas (advisory locks on): a pending reply younger than any reply may take
    can belong to a live replica, so a starting one settles only those surely abandoned."""
    settings = webhook_settings(make_settings, advisory_locks=True, max_reply_seconds=60)
    async with BotRuntime(settings):
        telegram.send_text(ALICE, "hello")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: hello"), timeout=15)
    engine = create_engine(database_url)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    try:
        async with create_sessionmaker(engine).begin() as session:
            [question, _] = await session.scalars(select(Message).order_by(Message.id))
            for content, created in (("abandoned", long_ago), ("still streaming", None)):
                session.add(
                    Message(
                        conversation_id=question.conversation_id,
                        chat_id=ALICE,
                        role=Role.ASSISTANT,
                        content=content,
                        token_count=0,
                        status=Status.PENDING,
                        reply_to_id=question.id,
                        **({"created_at": created} if created else {}),
                    )
                )
        async with BotRuntime(settings):
            async with asyncio.timeout(15):
                while True:
                    async with create_sessionmaker(engine)() as session:
                        rows = (
                            await session.execute(
                                select(Message.content, Message.status)
                                .where(Message.content.in_(["abandoned", "still streaming"]))
                                .order_by(Message.id)
                            )
                        ).all()
                    if rows[0][1] != Status.PENDING:
                        break
                    await asyncio.sleep(0.05)
        assert [tuple(row) for row in rows] == [
            ("abandoned", Status.FAILED),
            ("still streaming", Status.PENDING),
        ]
    finally:
        await engine.dispose()
