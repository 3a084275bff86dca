"""The end-to-end slice: Telegram update → SQL memory → trimmed prompt → streamed reply."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from bot.config import Settings
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Status
from bot.db.store import add_message
from bot.llm.tokens import TokenCounter
from bot.telegram.app import BotRuntime
from bot.telegram.streamer import TYPING_DELAY
from bot.values import Role
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages, texts

ALICE = 1001
BOB = 2002
SYSTEM = {"role": "system", "content": "You are a test assistant."}

LONG_ANSWER = " ".join(f"word{i}" for i in range(80))


async def test_reply_is_sent_then_edited_in_place_to_the_full_output(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(text=LONG_ANSWER, chunk_chars=12, chunk_delay=0.06))
    telegram.send_text(ALICE, "Tell me a long story")
    await telegram.wait_for(lambda: shows(telegram, ALICE, LONG_ANSWER), timeout=15)

    [reply] = telegram.bot_messages(ALICE)
    assert len(reply.edits) >= 3, "the reply should grow in place"
    assert all(LONG_ANSWER.startswith(text) for text in reply.edits)
    assert len(telegram.calls_for("sendMessage")) == 1
    edits = telegram.calls_for("editMessageText")
    assert len(edits) < len(LONG_ANSWER) // 12, "edits must be coalesced, not one per chunk"
    assert all(call.status == 200 for call in telegram.calls), "no 429 and no 'not modified'"
    assert not telegram.calls_for("sendChatAction"), "text at once: no 'typing…' call"
    assert reply.reply_to_message_id is not None


async def test_a_slow_model_shows_typing_until_its_first_text(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(text="Thought it over.", first_token_delay=TYPING_DELAY + 0.8))
    telegram.send_text(ALICE, "A hard question")
    await telegram.wait_for(lambda: shows(telegram, ALICE, "Thought it over."), timeout=15)

    methods = [call.method for call in telegram.calls]
    assert methods.index("sendChatAction") < methods.index("sendMessage"), methods
    assert telegram.calls_for("sendChatAction")[0].params["action"] == "typing"
    assert methods.count("sendChatAction") == 1


async def test_model_receives_system_prompt_and_history(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    await ask(telegram, ALICE, "My name is Alice.")
    await ask(telegram, ALICE, "What is my name?")

    second = model.chat_requests()[1]
    assert second["messages"] == [
        SYSTEM,
        {"role": "user", "content": "My name is Alice."},
        {"role": "assistant", "content": "Echo: My name is Alice."},
        {"role": "user", "content": "What is my name?"},
    ]
    assert second["stream"] is True
    assert second["stream_options"] == {"include_usage": True}
    assert second["model"] == "gpt-4o-mini"
    assert second["max_tokens"] == 1024


async def test_the_user_field_is_a_salted_hash_never_the_raw_id(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    await ask(telegram, ALICE, "one")
    await ask(telegram, ALICE, "two")
    await ask(telegram, BOB, "three")
    users = [request["user"] for request in model.chat_requests()]
    assert re.fullmatch(r"[0-9a-f]{32}", users[0])
    assert users[0] == users[1] != users[2]
    assert str(ALICE) not in users[0]


async def test_history_is_trimmed_oldest_first_to_the_token_budget(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    # Plain trimming; the rolling summary has its own tests (test_memory.py).
    settings = make_settings(context_tokens=400, max_reply_tokens=100, summary_enabled=False)
    sent = [f"Message number {i}: " + "lorem ipsum dolor sit amet " * 3 for i in range(12)]
    async with BotRuntime(settings):
        for text in sent:
            await ask(telegram, ALICE, text)

    last = model.chat_requests()[-1]["messages"]
    budget = settings.context_tokens - settings.max_reply_tokens
    assert last[0] == SYSTEM
    assert last[-1] == {"role": "user", "content": sent[-1]}
    assert model.count_prompt_tokens(last) <= budget
    history = last[1:]
    assert history[0]["role"] == "user", "a prompt never opens with an orphaned answer"
    assert len(history) < 2 * len(sent) - 1, "old turns must have been dropped"
    # What was kept is the newest, contiguous part of the conversation.
    full = []
    for text in sent:
        full += [
            {"role": "user", "content": text},
            {"role": "assistant", "content": f"Echo: {text}"},
        ]
    assert full[-1 - len(history) : -1] == history
    # ...and it is as much as fits: one more older turn would exceed the budget.
    one_more = [SYSTEM, *full[-3 - len(history) : -1]]
    assert model.count_prompt_tokens(one_more) > budget


async def test_history_survives_a_restart(
    settings: Settings, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    async with BotRuntime(settings):
        await ask(telegram, ALICE, "Remember the number 42.")
    async with BotRuntime(settings):
        await ask(telegram, ALICE, "Which number?")

    assert model.chat_requests()[-1]["messages"][1:] == [
        {"role": "user", "content": "Remember the number 42."},
        {"role": "assistant", "content": "Echo: Remember the number 42."},
        {"role": "user", "content": "Which number?"},
    ]


async def test_reset_starts_a_fresh_conversation_and_keeps_the_old_one(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    await ask(telegram, ALICE, "Before the reset.")
    telegram.send_text(ALICE, "/reset")
    await telegram.wait_for(lambda: any("new conversation" in t for t in texts(telegram, ALICE)))
    await ask(telegram, ALICE, "After the reset.")

    assert model.chat_requests()[-1]["messages"] == [
        SYSTEM,
        {"role": "user", "content": "After the reset."},
    ]
    stored = await stored_messages(database_url, ALICE)
    assert [m.content for m in stored][:2] == ["Before the reset.", "Echo: Before the reset."]
    assert stored[0].conversation_id != stored[-1].conversation_id


async def test_a_second_user_never_sees_the_first_users_history(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    await ask(telegram, ALICE, "Alice's secret is swordfish.")
    await ask(telegram, BOB, "What is Alice's secret?")

    bob_prompt = model.chat_requests()[-1]["messages"]
    assert bob_prompt == [SYSTEM, {"role": "user", "content": "What is Alice's secret?"}]
    assert "swordfish" not in str(bob_prompt)


async def test_every_message_and_reply_is_stored_with_tokens_and_usage(
    bot: BotRuntime, telegram: BotAPIEmulator, database_url: str
) -> None:
    await ask(telegram, ALICE, "Store me.")
    [user, assistant] = await stored_messages(database_url, ALICE)
    assert (user.role, user.status, user.content) == ("user", Status.COMPLETE, "Store me.")
    assert user.token_count > 0 and user.telegram_message_id is not None
    assert assistant.reply_to_id == user.id
    assert assistant.content == "Echo: Store me."
    assert assistant.status == Status.COMPLETE
    assert assistant.telegram_message_id == telegram.bot_messages(ALICE)[0].message_id


async def test_turns_in_one_chat_run_one_at_a_time_in_order(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.responder = lambda body: Reply(
        text=f"Echo: {body['messages'][-1]['content']}", chunk_chars=3, chunk_delay=0.02
    )
    for i in range(4):
        telegram.send_text(ALICE, f"question {i}")
    await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: question 3"), timeout=30)

    prompts = [request["messages"] for request in model.chat_requests()]
    assert [p[-1]["content"] for p in prompts] == [f"question {i}" for i in range(4)]
    # Each turn saw the complete answer to the one before it.
    for i in range(1, 4):
        assert prompts[i][-2] == {"role": "assistant", "content": f"Echo: question {i - 1}"}


async def test_a_message_over_the_budget_gets_a_clear_answer_and_is_not_sent(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    async with BotRuntime(make_settings(context_tokens=300, max_reply_tokens=100)):
        telegram.send_text(ALICE, "very long " * 400)
        await telegram.wait_for(lambda: any("too long" in t for t in texts(telegram, ALICE)))
        await ask(telegram, ALICE, "short one")

    assert len(model.chat_requests()) == 1
    assert model.chat_requests()[0]["messages"][1:] == [{"role": "user", "content": "short one"}]


async def test_a_sticker_gets_a_clear_answer_and_never_reaches_the_model(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    telegram.send_message(
        ALICE,
        sticker={
            "file_id": "s1",
            "file_unique_id": "u1",
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
        },
    )
    await telegram.wait_for(
        lambda: any("can't read sticker messages" in t for t in texts(telegram, ALICE))
    )
    assert model.chat_requests() == []


async def test_start_and_help_explain_the_bot(bot: BotRuntime, telegram: BotAPIEmulator) -> None:
    telegram.send_text(ALICE, "/start")
    telegram.send_text(ALICE, "/help")
    await telegram.wait_for(lambda: len(texts(telegram, ALICE)) == 2)
    welcome, help_text = texts(telegram, ALICE)
    assert "memory" in welcome
    assert "/reset" in help_text


async def test_a_long_reply_continues_in_a_new_message(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    paragraphs = [f"Paragraph {i}. " + "x" * 900 for i in range(6)]
    answer = "\n\n".join(paragraphs)
    model.enqueue(Reply(text=answer, chunk_chars=500))
    telegram.send_text(ALICE, "Write a lot")
    await telegram.wait_for(lambda: "Paragraph 5" in "".join(texts(telegram, ALICE)), timeout=20)
    await telegram.wait_for(lambda: texts(telegram, ALICE)[-1].endswith("x" * 900))
    parts = texts(telegram, ALICE)
    assert len(parts) == 2
    assert all(len(part) <= 4096 for part in parts)
    assert "\n\n".join(parts) == answer, "split on a paragraph boundary, nothing lost"


async def test_a_redelivered_update_is_answered_once(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    await ask(telegram, ALICE, "only once")
    telegram.redeliver(1)
    await ask(telegram, ALICE, "next")
    assert [r["messages"][-1]["content"] for r in model.chat_requests()] == ["only once", "next"]
    assert len(await stored_messages(database_url, ALICE)) == 4


async def test_groups_answer_mentions_and_replies_and_ignore_the_rest(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    group = -100500
    kw = {"user_id": ALICE, "chat_type": "supergroup"}
    telegram.send_text(group, "people talking among themselves", **kw)
    telegram.send_text(group, "@memory_test_bot what is 2+2?", **kw)
    await telegram.wait_for(lambda: shows(telegram, group, "Echo: Alice: what is 2+2?"))
    reply_id = telegram.bot_messages(group)[0].message_id
    telegram.send_text(
        group,
        "and 3+3?",
        reply_to_message_id=reply_id,
        first_name="Bob",
        user_id=BOB,
        chat_type="supergroup",
    )
    await telegram.wait_for(lambda: shows(telegram, group, "Echo: Bob: and 3+3?"))

    asked = [r["messages"][-1]["content"] for r in model.chat_requests()]
    assert asked == ["Alice: what is 2+2?", "Bob: and 3+3?"], "speakers are named in groups"


async def test_only_allowed_users_may_chat(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    async with BotRuntime(make_settings(allowed_user_ids=frozenset({ALICE}))):
        telegram.send_text(BOB, "let me in")
        await telegram.wait_for(lambda: texts(telegram, BOB) == ["Sorry, this bot is private."])
        await ask(telegram, ALICE, "hello")
    assert [r["messages"][-1]["content"] for r in model.chat_requests()] == ["hello"]


async def test_a_100_message_history_is_cut_to_the_newest_turns_that_fit_1000_tokens(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    settings = make_settings(  # a 1,000-token budget, no summary: plain trimming
        context_tokens=1256, max_reply_tokens=256, summary_enabled=False
    )
    counter = TokenCounter(settings.model)
    full: list[dict[str, str]] = []
    async with BotRuntime(settings):
        await ask(telegram, ALICE, "Turn 0: " + "tell me about the sea " * 3)
        [first, _] = await stored_messages(database_url, ALICE)
        engine = create_engine(database_url)
        async with create_sessionmaker(engine)() as session, session.begin():
            for turn in range(1, 50):  # 49 more turns: 100 stored messages in all
                for role, content in (
                    (Role.USER, f"Turn {turn}: " + "tell me about the sea " * 3),
                    (Role.ASSISTANT, f"Answer {turn}: " + "the sea is wide and deep " * 3),
                ):
                    await add_message(
                        session,
                        conversation_id=first.conversation_id,
                        chat_id=ALICE,
                        user_id=ALICE,
                        role=role,
                        content=content,
                        token_count=counter.count_message(role, content),
                        status=Status.COMPLETE,
                    )
                    full.append({"role": role, "content": content})
        await engine.dispose()
        await ask(telegram, ALICE, "And the last question?")

    sent = model.chat_requests()[-1]["messages"]
    history = sent[1:-1]
    assert model.count_prompt_tokens(sent) <= 1000
    assert history == full[-len(history) :], "the newest turns, contiguous, oldest dropped"
    assert history[0]["role"] == "user"
    one_more = [sent[0], *full[-len(history) - 2 :], sent[-1]]
    assert model.count_prompt_tokens(one_more) > 1000, "as much history as fits is kept"
    assert 20 <= len(history) < 100


async def test_a_turn_commits_once_before_the_model_is_asked(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    """Taking the update, then one transaction: the message, the history read, the reply's
    pending row. What the database does before the request is the bot's own latency."""
    await ask(telegram, ALICE, "The first message opens the conversation.")
    seen: list[tuple[float, str, int]] = []  # (when, statement or COMMIT, model requests so far)

    def statement(_conn: Any, _cursor: Any, text: str, *_: Any) -> None:
        seen.append((time.monotonic(), text, len(model.chat_requests())))

    def commit(_conn: Any) -> None:
        seen.append((time.monotonic(), "COMMIT", len(model.chat_requests())))

    event.listen(Engine, "before_cursor_execute", statement)
    event.listen(Engine, "commit", commit)
    try:
        # The first turn's last writes (its reply, its update marked done) come after its text.
        quiet, limit = time.monotonic() + 0.3, time.monotonic() + 10
        while time.monotonic() < min(quiet, limit):
            await asyncio.sleep(0.05)
            if seen and seen[-1][0] > quiet - 0.3:
                quiet = seen[-1][0] + 0.3
        await ask(telegram, ALICE, "The second one is measured.")
    finally:
        event.remove(Engine, "before_cursor_execute", statement)
        event.remove(Engine, "commit", commit)
    [delivered] = [
        call.at
        for call in telegram.calls_for("getUpdates")
        if "The second one is measured." in json.dumps(call.response)
    ]
    before = [text for at, text, requests in seen if at >= delivered and requests == 1]
    commits = [i for i, text in enumerate(before) if text == "COMMIT"]
    assert len(commits) == 2, before
    assert before[0].startswith("INSERT INTO update_log"), "the update is taken first"
    turn = before[commits[0] + 1 : commits[1]]
    assert [s.split()[0] for s in turn].count("INSERT") >= 2, "message and pending reply"
    assert any("FROM messages" in s for s in turn), "the history is read in the same transaction"
    assert len(before) - len(commits) <= 10, before
