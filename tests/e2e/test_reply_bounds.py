"""The bot's own bounds on a reply: a server that ignores max_tokens cannot flood a chat.

Each bound closes the model stream, keeps what was shown (stored `interrupted`) and ends the
shown text with a one-line notice saying which bound it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
from pydantic import ValidationError

from bot.config import describe_validation_error
from bot.db.models import Message, Status
from bot.model_step import BOUND_CODES
from bot.reply_bounds import Bound, ReplyBounds
from bot.telegram.app import BotRuntime
from bot.wording import render
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, stored_messages

ALICE = 1001
WORDS = "".join(f"word{i} " for i in range(40))


def letters(text: str) -> str:
    """The text without whitespace (messages are cut at spaces and line breaks)."""
    return "".join(text.split())


async def model_wait(predicate: Callable[[], bool]) -> None:
    """Wait for a state of the model emulator (which the Bot API emulator cannot signal)."""
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - another process' state, no event to wait on
            await asyncio.sleep(0.02)


def ends_with(telegram: BotAPIEmulator, notice: str) -> bool:
    shown = telegram.bot_messages(ALICE)
    return bool(shown) and shown[-1].text.endswith(notice)


async def stopped_reply(database_url: str) -> Message:
    stored = await stored_messages(database_url, ALICE)
    assert [(m.role, m.status) for m in stored[:2]] == [
        ("user", Status.COMPLETE),
        ("assistant", Status.INTERRUPTED),
    ]
    return stored[1]


async def test_an_endless_stream_stops_at_the_length_bound_and_closes_the_stream(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    endless = Reply(text=WORDS, chunk_chars=16, chunk_delay=0.002, endless=True)
    model.enqueue(endless)
    notice = render(BOUND_CODES[Bound.LENGTH])
    async with BotRuntime(make_settings(max_reply_chars=3_000)):
        telegram.send_text(ALICE, "talk for ever")
        await telegram.wait_for(lambda: ends_with(telegram, notice), timeout=30)
        await model_wait(lambda: endless.client_left)
        await ask(telegram, ALICE, "still there?")
    reply = await stopped_reply(database_url)
    assert len(reply.content) <= 3_000
    assert reply.content.endswith(tuple(WORDS.split())), "cut at a clean point"
    assert len(telegram.bot_messages(ALICE)) == 2, "one message for the bounded reply"
    telegram_messages = telegram.bot_messages(ALICE)[:1]
    assert letters(telegram_messages[0].text.removesuffix(notice)) == letters(reply.content)


async def test_one_huge_delta_is_cut_before_it_is_shown_and_paced(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    huge = WORDS * (1_000_000 // len(WORDS))
    model.enqueue(Reply(text=huge, chunk_chars=len(huge), ignore_max_tokens=True))
    settings = make_settings()
    bounds = ReplyBounds.of(settings, settings.max_reply_tokens)
    notice = render(BOUND_CODES[Bound.LENGTH])
    async with BotRuntime(settings):
        telegram.send_text(ALICE, "one megabyte, please")
        await telegram.wait_for(lambda: ends_with(telegram, notice), timeout=60)
    reply = await stopped_reply(database_url)
    assert 0 < len(reply.content) <= bounds.chars
    shown = telegram.bot_messages(ALICE)
    assert 2 <= len(shown) <= bounds.messages
    assert len(telegram.calls_for("sendMessage")) == len(shown), "no message sent in vain"
    assert letters("".join(m.text for m in shown).removesuffix(notice)) == letters(reply.content)
    assert all(len(m.text) <= 4096 for m in shown)


async def test_a_reply_stops_at_the_message_bound(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    model.enqueue(Reply(text=WORDS, chunk_chars=40, chunk_delay=0.002, endless=True))
    notice = render(BOUND_CODES[Bound.MESSAGES])
    async with BotRuntime(make_settings(max_reply_chars=100_000, max_reply_messages=2)):
        telegram.send_text(ALICE, "a long one")
        await telegram.wait_for(lambda: ends_with(telegram, notice), timeout=60)
    reply = await stopped_reply(database_url)
    shown = telegram.bot_messages(ALICE)
    assert len(shown) == 2
    assert letters("".join(m.text for m in shown).removesuffix(notice)) == letters(reply.content)


async def test_a_reply_stops_at_the_time_bound(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    endless = Reply(text=WORDS, chunk_chars=4, chunk_delay=0.1, endless=True)
    model.enqueue(endless)
    notice = render(BOUND_CODES[Bound.TIME])
    async with BotRuntime(make_settings(max_reply_seconds=5)):
        telegram.send_text(ALICE, "slowly, for ever")
        await telegram.wait_for(lambda: ends_with(telegram, notice), timeout=30)
        await model_wait(lambda: endless.client_left)
    reply = await stopped_reply(database_url)
    [shown] = telegram.bot_messages(ALICE)
    assert reply.content and letters(shown.text.removesuffix(notice)) == letters(reply.content)


def test_the_defaults_derive_from_the_reply_tokens_and_never_cut_an_honest_reply(
    make_settings: SettingsFactory,
) -> None:
    bounds = ReplyBounds.of(make_settings(), 1_024)
    assert bounds.chars >= 1_024 * 6, "more characters than any tokenizer gives 1024 tokens"
    assert bounds.messages * 2_048 >= bounds.chars
    assert bounds.seconds >= 1_024 / 10
    set_ = ReplyBounds.of(make_settings(max_reply_chars=500, max_reply_seconds=9), 1_024)
    assert (set_.chars, set_.messages, set_.seconds) == (500, 2, 9)


@pytest.mark.parametrize(
    ("name", "value"),
    [("max_reply_chars", 10), ("max_reply_messages", 0), ("max_reply_seconds", 1)],
)
def test_a_bad_bound_is_a_start_up_error_naming_the_setting(
    make_settings: SettingsFactory, name: str, value: int
) -> None:
    with pytest.raises(ValidationError) as raised:
        make_settings(**{name: value})
    assert name.upper() in describe_validation_error(raised.value)
