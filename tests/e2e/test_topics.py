"""Forum topics: each topic of a forum supergroup is its own conversation, answered in place."""

from __future__ import annotations

import pytest
from telegram.error import BadRequest

from bot.telegram.app import BotRuntime
from bot.telegram.streamer import TYPING_DELAY
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.e2e.chat import shows

FORUM = -100777
ALICE = 1001
TOPIC_A, TOPIC_B = 11, 22


async def say(telegram: BotAPIEmulator, topic: int | None, text: str, answer: str) -> None:
    telegram.send_text(
        FORUM,
        f"@{telegram.bot_username} {text}",
        chat_type="supergroup",
        user_id=ALICE,
        message_thread_id=topic,
    )
    await telegram.wait_for(lambda: shows(telegram, FORUM, answer), timeout=15)


async def test_two_topics_keep_separate_histories_and_replies_stay_in_their_topic(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    await say(telegram, TOPIC_A, "apples", "Echo: Alice: apples")
    await say(telegram, TOPIC_B, "bananas", "Echo: Alice: bananas")
    await say(telegram, TOPIC_A, "more apples", "Echo: Alice: more apples")
    await say(telegram, TOPIC_B, "more bananas", "Echo: Alice: more bananas")

    requests = model.chat_requests()
    in_a = [m["content"] for m in requests[2]["messages"][1:]]
    in_b = [m["content"] for m in requests[3]["messages"][1:]]
    assert in_a == ["Alice: apples", "Echo: Alice: apples", "Alice: more apples"]
    assert in_b == ["Alice: bananas", "Echo: Alice: bananas", "Alice: more bananas"]
    threads = {m.text: m.message_thread_id for m in telegram.bot_messages(FORUM)}
    assert threads["Echo: Alice: apples"] == threads["Echo: Alice: more apples"] == TOPIC_A
    assert threads["Echo: Alice: bananas"] == threads["Echo: Alice: more bananas"] == TOPIC_B


async def test_typing_shows_in_the_topic_being_answered(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(text="Slow apples.", first_token_delay=TYPING_DELAY + 0.5))
    await say(telegram, TOPIC_B, "apples, slowly", "Slow apples.")

    [action] = telegram.calls_for("sendChatAction")
    assert action.params.get("message_thread_id") == TOPIC_B


async def test_reset_in_one_topic_keeps_the_other_and_general_is_its_own(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    await say(telegram, TOPIC_A, "apples", "Echo: Alice: apples")
    await say(telegram, TOPIC_B, "bananas", "Echo: Alice: bananas")
    await say(telegram, None, "general talk", "Echo: Alice: general talk")
    telegram.send_text(
        FORUM, "/reset", chat_type="supergroup", user_id=ALICE, message_thread_id=TOPIC_A
    )
    await telegram.wait_for(
        lambda: any(
            m.text.startswith("Started a new conversation") and m.message_thread_id == TOPIC_A
            for m in telegram.bot_messages(FORUM)
        )
    )
    await say(telegram, TOPIC_A, "fresh start", "Echo: Alice: fresh start")
    await say(telegram, TOPIC_B, "still here?", "Echo: Alice: still here?")
    await say(telegram, None, "and general?", "Echo: Alice: and general?")

    *_, fresh, still, general = model.chat_requests()
    assert [m["content"] for m in fresh["messages"][1:]] == ["Alice: fresh start"]
    assert [m["content"] for m in still["messages"][1:]][:2] == [
        "Alice: bananas",
        "Echo: Alice: bananas",
    ]
    assert [m["content"] for m in general["messages"][1:]][:2] == [
        "Alice: general talk",
        "Echo: Alice: general talk",
    ]
    general_reply = [m for m in telegram.bot_messages(FORUM) if "general?" in m.text]
    assert general_reply[0].message_thread_id is None


async def test_the_emulator_refuses_a_topic_that_does_not_exist(
    bot: BotRuntime, telegram: BotAPIEmulator
) -> None:
    await say(telegram, TOPIC_A, "apples", "Echo: Alice: apples")
    assert bot.app is not None
    with pytest.raises(BadRequest, match=r"(?i)message thread not found"):
        await bot.app.bot.send_message(FORUM, "lost", message_thread_id=999)
