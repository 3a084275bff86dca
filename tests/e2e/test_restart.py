"""Restarts: the real `python -m bot run` process is SIGKILLed mid-reply and started again.

The emulators run in the test process, so they outlive the bot: updates sent while it is down
wait in the Bot API emulator's queue (unconfirmed updates are redelivered, as Telegram does).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from sqlalchemy import select

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Message, MessageDelivery, Status
from bot.notices import Code
from bot.telegram.app import BotRuntime
from bot.values import Role
from bot.wording import render
from emulators.bot_api import BotAPIEmulator, ChatMessage
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages

RESTART_NOTICE = render(Code.RESTARTED)

ALICE = 1001
BOB = 2002
SETTINGS_PREFIXES = ("TELEGRAM_", "OPENAI_", "DATABASE_URL", "MODEL", "SYSTEM_PROMPT", "LOG_LEVEL")
STORY = " ".join(f"word{i}." for i in range(120))


def bot_environment(
    database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_PREFIXES)}
    env.update(
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_BASE_URL=telegram.base_url.removesuffix("/bot"),
        OPENAI_BASE_URL=model.base_url,
        OPENAI_API_KEY=model.api_key,
        DATABASE_URL=database_url,
        LOG_LEVEL="INFO",
    )
    return env


@asynccontextmanager
async def bot_process(env: dict[str, str], log: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    """`python -m bot run` with its output in `log`; killed if the test leaves it running."""
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "run",
            cwd=log.parent,
            env=env,
            stdout=output,
            stderr=output,
        )
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def partial_reply_saved(database_url: str, chat_id: int) -> bool:
    """Whether the story being streamed has some of its text in the database."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            found = await session.scalar(
                select(Message.id).where(
                    Message.chat_id == chat_id,
                    Message.status == Status.PENDING,
                    Message.content.startswith("word0"),
                )
            )
        return found is not None
    finally:
        await engine.dispose()


async def wait_until_saved(database_url: str, chat_id: int) -> None:
    async with asyncio.timeout(30):
        while True:
            if await partial_reply_saved(database_url, chat_id):
                return
            await asyncio.sleep(0.1)


async def test_a_bot_killed_mid_reply_restarts_consistent_answering_each_update_once(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    env = bot_environment(database_url, telegram, model)
    log = tmp_path / "bot.log"
    async with bot_process(env, log) as first:
        telegram.send_text(ALICE, "first")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: first"), timeout=60)
        model.enqueue(Reply(text=STORY, chunk_chars=6, chunk_delay=0.25))
        telegram.send_text(ALICE, "tell me a long story")
        await wait_until_saved(database_url, ALICE)
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL

    # While the bot is down, both users write; Telegram keeps the updates.
    telegram.send_text(ALICE, "are you back?")
    telegram.send_text(BOB, "hello")
    async with bot_process(env, log) as second:
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: are you back?"), timeout=60)
        await telegram.wait_for(lambda: shows(telegram, BOB, "Echo: hello"), timeout=30)
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0, log.read_text()

    alice = await stored_messages(database_url, ALICE)
    assert [(m.role, m.status) for m in alice] == [
        (Role.USER, Status.COMPLETE),
        (Role.ASSISTANT, Status.COMPLETE),
        (Role.USER, Status.COMPLETE),
        (Role.ASSISTANT, Status.INTERRUPTED),
        (Role.USER, Status.COMPLETE),
        (Role.ASSISTANT, Status.COMPLETE),
    ], "the reply cut by the kill is interrupted, nothing is pending or doubled"
    partial = alice[3].content
    assert partial and STORY.startswith(partial), "the saved text is a prefix of the stream"
    story = telegram.bot_messages(ALICE)[1]
    assert story.text == f"{partial}\n\n{RESTART_NOTICE}", "the fragment is ended with a notice"
    assert alice[3].token_count > 0
    assert [(m.role, m.content) for m in await stored_messages(database_url, BOB)] == [
        (Role.USER, "hello"),
        (Role.ASSISTANT, "Echo: hello"),
    ]

    asked = Counter(r["messages"][-1]["content"] for r in model.chat_requests())
    assert asked == Counter(["first", "tell me a long story", "are you back?", "hello"]), (
        "every user message reached the model exactly once"
    )
    after_restart = next(
        r for r in model.chat_requests() if r["messages"][-1]["content"] == "are you back?"
    )
    assert {"role": "assistant", "content": partial} in after_restart["messages"], (
        "the interrupted text is remembered"
    )
    answers = Counter((m.chat_id, m.reply_to_message_id) for m in all_bot_messages(telegram))
    assert all(count == 1 for count in answers.values()), f"an update was answered twice: {answers}"
    assert telegram.pending_updates() == 0, "every update was confirmed"
    assert "settling 1 replies left unfinished" in log.read_text()


def all_bot_messages(telegram: BotAPIEmulator) -> list[ChatMessage]:
    return [m for chat in (ALICE, BOB) for m in telegram.bot_messages(chat)]


async def test_start_up_keeps_shown_partial_text_as_interrupted_and_answers_lost_replies(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, database_url: str
) -> None:
    async with BotRuntime(make_settings()):
        await ask(telegram, ALICE, "hello")
    [shown] = telegram.bot_messages(ALICE)
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            [question, _] = await session.scalars(select(Message).order_by(Message.id))
            for content in ("half a rep", ""):
                message = Message(
                    conversation_id=question.conversation_id,
                    chat_id=ALICE,
                    role=Role.ASSISTANT,
                    content=content,
                    token_count=0,
                    status=Status.PENDING,
                    reply_to_id=question.id,
                )
                session.add(message)
                await session.flush()
                if content:  # shown in a Telegram message before the kill
                    session.add(
                        MessageDelivery(
                            message_id=message.id, position=0, telegram_message_id=shown.message_id
                        )
                    )
    finally:
        await engine.dispose()

    async with BotRuntime(make_settings()):
        stored = await stored_messages(database_url, ALICE)
        assert [(m.content, m.status) for m in stored[2:]] == [
            ("half a rep", Status.INTERRUPTED),
            ("", Status.FAILED),
            ("Echo: hello", Status.COMPLETE),
        ], "the shown part is kept; the reply nothing was shown of is written again"
        edited, again = telegram.bot_messages(ALICE)
        assert edited.text == f"half a rep\n\n{RESTART_NOTICE}"
        assert (
            again.text == "Echo: hello"
            and again.reply_to_message_id == question.telegram_message_id
        )
        await ask(telegram, ALICE, "next")


async def test_a_message_queued_behind_a_reply_survives_a_kill(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    env = bot_environment(database_url, telegram, model)
    async with bot_process(env, tmp_path / "bot.log") as first:
        telegram.send_text(ALICE, "first")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: first"), timeout=60)
        model.enqueue(Reply(text=STORY, chunk_chars=6, chunk_delay=0.25))
        telegram.send_text(ALICE, "tell me a long story")
        await wait_until_saved(database_url, ALICE)
        telegram.send_text(ALICE, "queued question")
        await telegram.wait_for(lambda: telegram.pending_updates() == 0)  # Telegram forgot it
        first.send_signal(signal.SIGKILL)
        await first.wait()
    async with bot_process(env, tmp_path / "bot.log"):
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: queued question"), 30)
        stored = await stored_messages(database_url, ALICE)
    questions = [m.content for m in stored if m.role == "user"]
    assert questions == ["first", "tell me a long story", "queued question"]
    assert [m.text for m in telegram.bot_messages(ALICE)].count("Echo: queued question") == 1
    assert len(telegram.bot_messages(ALICE)) == 3, "the interrupted story is not told again"
