"""Context-length errors never reach users: trimmed harder and retried once, then learned."""

from __future__ import annotations

from bot.config import Settings
from bot.telegram.app import BotRuntime
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages

ALICE, BOB = 1001, 2002
WINDOW, REPLY = 1000, 100
MODEL = "gpt-4o-mini"


def long_turn(i: int) -> str:
    return f"Message {i}: " + "the quick brown fox jumps over the lazy dog " * 3


async def fill_history(settings: Settings, telegram: BotAPIEmulator, turns: int = 12) -> None:
    """A history longer than the window, written while the server counts like we do."""
    async with BotRuntime(settings):
        for i in range(turns):
            await ask(telegram, ALICE, long_turn(i))


def server_tokens(model: OpenAIEmulator, body: dict[str, object]) -> int:
    messages = body["messages"]
    assert isinstance(messages, list)
    return round(model.count_prompt_tokens(messages) * model.token_factors.get(MODEL, 1.0))


async def test_a_context_length_error_is_retried_once_trimmed_and_then_learned(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(context_tokens=WINDOW, max_reply_tokens=REPLY, summary_enabled=False)
    model.context_windows[MODEL] = WINDOW
    await fill_history(settings, telegram)
    model.token_factors[MODEL] = 1.5  # a new process meets a server that counts 50% more
    async with BotRuntime(settings):
        before = len(model.chat_requests())
        await ask(telegram, ALICE, "first after restart")
        refused, retried = model.chat_requests()[before:]
        assert server_tokens(model, refused) + REPLY > WINDOW
        assert server_tokens(model, retried) + REPLY <= WINDOW
        assert retried["messages"][-1]["content"] == "first after restart"
        await ask(telegram, ALICE, "second after restart")
        assert len(model.chat_requests()) == before + 3, "the next turn fits the first time"
        assert server_tokens(model, model.chat_requests()[-1]) + REPLY <= WINDOW
    assert not any("too long" in m.text for m in telegram.bot_messages(ALICE))


async def test_the_correction_is_learned_from_reported_usage_before_any_error(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    settings = make_settings(context_tokens=WINDOW, max_reply_tokens=REPLY, summary_enabled=False)
    model.context_windows[MODEL] = WINDOW
    await fill_history(settings, telegram)
    model.token_factors[MODEL] = 1.5
    async with BotRuntime(settings):
        await ask(telegram, BOB, "hi")  # a short chat: its usage report teaches the ratio
        await stored_messages(database_url, BOB)  # its reply (and usage) recorded
        before = len(model.chat_requests())
        await ask(telegram, ALICE, "after the lesson")
        [only] = model.chat_requests()[before:]
        assert server_tokens(model, only) + REPLY <= WINDOW


async def test_a_prompt_still_too_long_after_the_retry_gets_a_plain_answer(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(context_tokens=WINDOW, max_reply_tokens=REPLY, summary_enabled=False)
    model.context_windows[MODEL] = WINDOW
    await fill_history(settings, telegram, turns=3)
    model.context_windows[MODEL] = 120  # smaller than even the new message with the reply
    async with BotRuntime(settings):
        before = len(model.chat_requests())
        telegram.send_text(ALICE, long_turn(99))
        answer = "The conversation is too long for the model. Try /reset to start fresh."
        await telegram.wait_for(lambda: shows(telegram, ALICE, answer), timeout=15)
        assert len(model.chat_requests()) - before <= 2, "retried at most once"
