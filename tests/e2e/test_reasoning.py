"""Reasoning text: `<think>` blocks are kept out of the history and hidden unless asked for."""

from __future__ import annotations

from bot.db.models import Status
from bot.telegram.app import BotRuntime
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages

ALICE = 1001
THOUGHT = "The user wants a number. Secret plan: say 42."
ANSWER = "The answer is 42."


async def test_think_blocks_never_reach_a_later_prompt_nor_the_user(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    model.enqueue(Reply(text=f"<think>{THOUGHT}</think>\n\n{ANSWER}", chunk_chars=3))
    telegram.send_text(ALICE, "Pick a number")
    await telegram.wait_for(lambda: shows(telegram, ALICE, ANSWER), timeout=15)
    await ask(telegram, ALICE, "Why?")

    later = model.chat_requests()[1]["messages"]
    assert {"role": "assistant", "content": ANSWER} in later
    assert all("Secret" not in m["content"] and "think" not in m["content"] for m in later)
    [reply] = [m for m in telegram.bot_messages(ALICE) if m.text == ANSWER]
    assert all("Secret" not in edit and "<" not in edit for edit in reply.edits)
    rows = await stored_messages(database_url, ALICE)
    assert rows[1].content == ANSWER and rows[1].reasoning == THOUGHT
    assert rows[1].token_count < 20, "the token count covers the answer only"


async def test_a_think_block_cut_off_mid_stream_is_never_stored_as_the_answer(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    model.enqueue(Reply(text="<think>" + "pondering " * 10, chunk_chars=10, cut_after=5))
    telegram.send_text(ALICE, "Hard question")
    await telegram.wait_for(
        lambda: any("couldn't reach" in m.text for m in telegram.bot_messages(ALICE)),
        timeout=15,
    )
    await ask(telegram, ALICE, "Again")
    assert all("pondering" not in m["content"] for m in model.chat_requests()[-1]["messages"])
    assert all("pondering" not in m.text for m in telegram.bot_messages(ALICE))
    rows = await stored_messages(database_url, ALICE)
    assert rows[1].status == Status.FAILED and rows[1].content == ""


async def test_show_reasoning_puts_the_thinking_collapsed_above_the_answer(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(text=f"<think>{THOUGHT}</think>{ANSWER}"))
    async with BotRuntime(make_settings(show_reasoning=True)):
        telegram.send_text(ALICE, "Pick a number")
        expected = f"{THOUGHT}\n\n{ANSWER}"
        await telegram.wait_for(lambda: shows(telegram, ALICE, expected), timeout=15)
        await ask(telegram, ALICE, "Why?")
    [reply] = [m for m in telegram.bot_messages(ALICE) if m.text == expected]
    quote = [e for e in reply.entities if e["type"] == "expandable_blockquote"]
    assert quote == [{"type": "expandable_blockquote", "offset": 0, "length": len(THOUGHT)}]
    later = model.chat_requests()[1]["messages"]
    assert {"role": "assistant", "content": ANSWER} in later
