"""Kills at random moments: what users saw must be what is stored.

A real `python -m bot run` process answers several chats with short, medium and long
(multi-message) replies at a realistic token pace and is SIGKILLed at random moments (seeded),
then restarted, again and again. After the last restart settles and a clean SIGTERM, what the
Bot API emulator shows is compared with what the database stores.

KILL_TEST_KILLS raises the number of kills (default 20), KILL_TEST_SEED picks the moments and
KILL_TEST_REPORT names a JSON file the figures are written to (`pytest -s` prints them).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Message, MessageDelivery, Status, UpdateLog
from bot.notices import Code
from bot.values import Role
from bot.wording import render
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.e2e.test_restart import bot_environment, bot_process

RESTART_NOTICE = render(Code.RESTARTED)

CHATS = (3001, 3002, 3003, 3004)
KILLS = int(os.environ.get("KILL_TEST_KILLS", "20"))
SEED = int(os.environ.get("KILL_TEST_SEED", "15"))
VOCABULARY = [
    *("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india"),
    *("juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"),
    *("sierra", "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu"),
]
LENGTHS = {"short": 320, "medium": 1_600, "long": 10_000}  # characters; long = 3 messages
KINDS = ("short",) * 4 + ("medium",) * 3 + ("long",) * 3
NOTICES = (RESTART_NOTICE,)


@dataclass
class Figures:
    database: str
    seed: int
    kills: int
    turns: int  # questions sent
    replies_shown: int  # stored replies with at least one visible message
    interrupted_shown: int
    answered_again: int  # replies lost before anything showed, written anew after a restart
    shown_not_stored: int  # visible bot messages no stored reply holds (or holds other text of)
    # ... of which: the first message of a reply, killed in the milliseconds between Telegram
    # showing it and the bot storing its id (the restart cannot know it, and answers again)
    in_send_window: int
    fragments: int  # cut replies whose last visible message has no notice
    duplicates: int  # questions answered by more than one visible reply
    pending: int  # replies still pending in the database
    unanswered: int  # stored questions without a visible reply
    # Sent but never stored: Telegram had confirmed the update before the kill and the update
    # log had not recorded it yet (the update log's window, outside this test's subject).
    questions_lost: int


def answer_text(question: str) -> str:
    """The reply to `q<chat>-<n> <kind>`: unique words first, so every reply is told apart."""
    tag, kind = question.split()[-2:]
    words = [f"{tag}:"]
    index = 0
    while sum(len(w) + 1 for w in words) < LENGTHS[kind]:
        if index % 60 == 59:
            words.append(f"{tag}.{index}\n\n")
        words.append(VOCABULARY[index % len(VOCABULARY)])
        index += 1
    return " ".join(words).replace("\n\n ", "\n\n")


def respond(body: dict[str, Any]) -> Reply:
    question = str(body["messages"][-1]["content"])
    # About 130 tokens/s, as fast hosted models stream: a long reply takes some 12 s.
    return Reply(text=answer_text(question), chunk_chars=10, chunk_delay=0.012)


def letters(text: str) -> str:
    return "".join(text.split())


async def stored(database_url: str) -> tuple[list[Message], dict[tuple[int, int], int]]:
    """All messages, and (chat, Telegram message id) → the stored message it shows."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            messages = list(await session.scalars(select(Message).order_by(Message.id)))
            rows = await session.execute(
                select(
                    Message.chat_id, MessageDelivery.telegram_message_id, MessageDelivery.message_id
                )
                .join(Message, Message.id == MessageDelivery.message_id)
                .order_by(MessageDelivery.message_id, MessageDelivery.position)
            )
            parts = {(chat, telegram): message for chat, telegram, message in rows}
    finally:
        await engine.dispose()
    return messages, parts


async def settled(database_url: str, telegram: BotAPIEmulator) -> bool:
    """Every update taken is handled and every stored question has a finished, visible reply."""
    if telegram.pending_updates():
        return False
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            waiting = await session.scalar(
                select(func.count()).select_from(UpdateLog).where(UpdateLog.done.is_(False))
            )
    finally:
        await engine.dispose()
    messages, parts = await stored(database_url)
    questions = [m for m in messages if m.role == Role.USER]
    replies = [m for m in messages if m.role == Role.ASSISTANT]
    if waiting or any(m.status == Status.PENDING for m in replies):
        return False
    shown = {message for message in parts.values()}
    answered = {m.reply_to_id for m in replies if m.id in shown}
    return all(q.id in answered for q in questions)


def compare(
    messages: list[Message], parts: dict[tuple[int, int], int], telegram: BotAPIEmulator
) -> dict[str, int]:
    by_id = {m.id: m for m in messages}
    questions_by_telegram = {
        (m.chat_id, m.telegram_message_id): m for m in messages if m.role == Role.USER
    }
    lost = {
        m.reply_to_id for m in messages if m.role == Role.ASSISTANT and m.status == Status.FAILED
    }
    shown_not_stored = fragments = in_send_window = 0
    visible: dict[int, list[str]] = {}  # stored reply → its visible texts, in order
    for chat in CHATS:
        for shown in telegram.bot_messages(chat):
            reply = by_id.get(parts.get((chat, shown.message_id), -1))
            text = shown.text
            for notice in NOTICES:
                text = text.removesuffix(notice)
            if reply is None or letters(text) not in letters(reply.content):
                shown_not_stored += 1
                question = questions_by_telegram.get((chat, shown.reply_to_message_id or 0))
                window = reply is None and question is not None and question.id in lost
                in_send_window += window
                print(f"  not stored: chat {chat} message {shown.message_id} {text[:40]!r}", end="")
                print(f" reply {reply.id if reply else None} window={window}")
                continue
            visible.setdefault(reply.id, []).append(shown.text)
    for reply_id, texts in visible.items():
        reply = by_id[reply_id]
        if reply.status != Status.COMPLETE and not texts[-1].endswith(NOTICES):
            fragments += 1
    answers: dict[int | None, int] = {}
    for reply_id in visible:
        question = by_id[reply_id].reply_to_id
        answers[question] = answers.get(question, 0) + 1
    questions = [m for m in messages if m.role == Role.USER]
    replies = [m for m in messages if m.role == Role.ASSISTANT]
    return {
        "replies_shown": len(visible),
        "interrupted_shown": sum(by_id[r].status == Status.INTERRUPTED for r in visible),
        "answered_again": sum(
            1 for m in replies if m.status == Status.FAILED and m.reply_to_id in answers
        ),
        "shown_not_stored": shown_not_stored,
        "in_send_window": in_send_window,
        "fragments": fragments,
        "duplicates": sum(1 for count in answers.values() if count > 1),
        "pending": sum(1 for m in replies if m.status == Status.PENDING),
        "unanswered": sum(1 for q in questions if q.id not in answers),
    }


async def polling(log: Path, starts: int) -> None:
    """Wait for the bot's `starts`-th "polling" line (the emulator records a getUpdates call
    only once its long poll ends)."""
    async with asyncio.timeout(90):
        while log.read_text().count("is polling for updates") < starts:  # noqa: ASYNC110, ASYNC240
            await asyncio.sleep(0.05)


async def test_kills_at_random_moments_leave_nothing_shown_but_unstored(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    rng = random.Random(SEED)
    model.responder = respond
    env = bot_environment(database_url, telegram, model)
    env.update(
        MAX_REPLY_TOKENS="4096",
        SUMMARY_ENABLED="false",
        MAX_QUEUED_PER_CHAT="100",
        DATABASE_POOL_SIZE="4",  # the PostgreSQL server is shared
    )
    log = tmp_path / "bot.log"
    asked = 0
    for kill in range(KILLS):
        async with bot_process(env, log) as bot:
            await polling(log, starts=kill + 1)
            for chat in rng.sample(CHATS, rng.randint(1, len(CHATS))):
                asked += 1
                telegram.send_text(chat, f"please answer q{chat}-{asked} {rng.choice(KINDS)}")
            await asyncio.sleep(rng.uniform(0.2, 4.0))
            bot.send_signal(signal.SIGKILL)
            await bot.wait()
    async with bot_process(env, log) as bot:
        await polling(log, starts=KILLS + 1)  # SIGTERM before its handler is set would kill
        async with asyncio.timeout(300):
            while not await settled(database_url, telegram):  # noqa: ASYNC110
                await asyncio.sleep(0.5)
        bot.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(bot.wait(), 60) == 0, log.read_text()[-3000:]

    messages, parts = await stored(database_url)
    figures = Figures(
        database=database_url.split(":", 1)[0],
        seed=SEED,
        kills=KILLS,
        turns=asked,
        questions_lost=asked - sum(1 for m in messages if m.role == Role.USER),
        **compare(messages, parts, telegram),
    )
    line = "kill test: " + ", ".join(f"{k}={v}" for k, v in asdict(figures).items())
    print(line)
    if report := os.environ.get("KILL_TEST_REPORT"):
        await asyncio.to_thread(Path(report).write_text, json.dumps(asdict(figures)) + "\n")
    assert figures.shown_not_stored == figures.in_send_window, line
    assert figures.fragments == 0, line
    assert figures.duplicates == 0, line
    assert figures.pending == 0, line
    assert figures.unanswered == 0, line
    assert figures.questions_lost == 0, line  # the update log has every fetched update
