"""Controlling a live reply: /stop, /retry, the busy signal, draft streaming, flood limits."""

from __future__ import annotations

from itertools import count

from sqlalchemy import select

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import MessageDelivery, Status
from bot.notices import Code
from bot.telegram.app import BotRuntime
from bot.telegram.handlers import BUSY, HELP, NOTHING_TO_RETRY, NOTHING_TO_STOP
from bot.wording import render
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages, texts

STOPPED_NOTICE = render(Code.STOPPED)

ALICE = 1001
SLOW = " ".join(f"w{i}" for i in range(200))


def _slow_reply() -> Reply:
    return Reply(text=SLOW, chunk_chars=6, chunk_delay=0.05)


async def test_stop_mid_stream_closes_the_model_request_and_keeps_the_partial_text(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    model.enqueue(_slow_reply())
    telegram.send_text(ALICE, "talk for a while")
    await telegram.wait_for(lambda: bool(texts(telegram, ALICE)))
    telegram.send_text(ALICE, "/stop")
    await telegram.wait_for(lambda: texts(telegram, ALICE)[0].endswith(STOPPED_NOTICE))

    [shown] = texts(telegram, ALICE)
    partial = shown.removesuffix(STOPPED_NOTICE).strip()
    assert partial and SLOW.startswith(partial) and partial != SLOW
    await telegram.wait_for(lambda: model.open_streams == 0)
    stored = await stored_messages(database_url, ALICE)
    assert stored[1].status == Status.INTERRUPTED
    assert SLOW.startswith(stored[1].content) and stored[1].content.startswith(partial)

    await ask(telegram, ALICE, "what did you say?")
    remembered = model.chat_requests()[-1]["messages"][-2]
    assert remembered == {"role": "assistant", "content": stored[1].content}


async def test_stop_with_nothing_running_says_so(bot: BotRuntime, telegram: BotAPIEmulator) -> None:
    telegram.send_text(ALICE, "/stop")
    await telegram.wait_for(lambda: texts(telegram, ALICE) == [NOTHING_TO_STOP])


async def test_retry_regenerates_the_last_reply_and_replaces_it_in_memory(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    versions = count(1)
    model.responder = lambda body: f"Answer v{next(versions)}"
    telegram.send_text(ALICE, "question")
    await telegram.wait_for(lambda: shows(telegram, ALICE, "Answer v1"))
    telegram.send_text(ALICE, "/retry")
    await telegram.wait_for(lambda: shows(telegram, ALICE, "Answer v2"))
    telegram.send_text(ALICE, "follow-up")
    await telegram.wait_for(lambda: shows(telegram, ALICE, "Answer v3"))

    first, retried, follow_up = (r["messages"] for r in model.chat_requests())
    assert retried == first, "the retry asks exactly the same question"
    assert follow_up[1:] == [
        {"role": "user", "content": "question"},
        {"role": "assistant", "content": "Answer v2"},
        {"role": "user", "content": "follow-up"},
    ]
    statuses = [(m.content, m.status) for m in await stored_messages(database_url, ALICE)]
    assert ("Answer v1", Status.REPLACED) in statuses


async def test_retry_after_a_failed_turn_answers_the_kept_message(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(status=401))
    telegram.send_text(ALICE, "first try")
    await telegram.wait_for(lambda: len(texts(telegram, ALICE)) == 1)
    telegram.send_text(ALICE, "/retry")
    await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: first try"))


async def test_retry_with_no_conversation_says_so(
    bot: BotRuntime, telegram: BotAPIEmulator
) -> None:
    telegram.send_text(ALICE, "/retry")
    await telegram.wait_for(lambda: texts(telegram, ALICE) == [NOTHING_TO_RETRY])


async def test_messages_beyond_the_queue_limit_get_a_busy_answer_the_rest_wait_their_turn(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(_slow_reply())
    async with BotRuntime(make_settings(max_queued_per_chat=1)):
        telegram.send_text(ALICE, "long one")
        await telegram.wait_for(lambda: bool(texts(telegram, ALICE)))
        for i in range(3):
            telegram.send_text(ALICE, f"queued {i}")
        await telegram.wait_for(lambda: texts(telegram, ALICE).count(BUSY) == 2)
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: queued 0"), timeout=30)
    asked = [r["messages"][-1]["content"] for r in model.chat_requests()]
    assert asked == ["long one", "queued 0"]


async def test_draft_mode_streams_drafts_then_sends_the_final_message(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(_slow_reply())
    async with BotRuntime(make_settings(stream_mode="draft")):
        telegram.send_text(ALICE, "draft it")
        await telegram.wait_for(lambda: shows(telegram, ALICE, SLOW), timeout=30)
    drafts = telegram.drafts(ALICE)
    assert len(drafts) >= 2
    assert len({d["draft_id"] for d in drafts}) == 1, "one draft animates"
    assert all(SLOW.startswith(d["text"]) for d in drafts)
    assert telegram.calls_for("editMessageText") == []
    assert len(telegram.calls_for("sendMessage")) == 1


async def test_groups_use_edits_even_in_draft_mode(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    group = -100777
    model.enqueue(Reply(text=SLOW, chunk_chars=20, chunk_delay=0.1))
    async with BotRuntime(make_settings(stream_mode="draft")):
        telegram.send_text(group, "@memory_test_bot hi", user_id=ALICE, chat_type="supergroup")
        await telegram.wait_for(lambda: shows(telegram, group, SLOW), timeout=30)
    assert telegram.drafts(group) == []
    assert telegram.calls_for("editMessageText")


async def test_an_edit_interval_below_telegrams_limit_never_trips_the_flood_limit(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(text=SLOW, chunk_chars=4, chunk_delay=0.02))
    async with BotRuntime(make_settings(edit_interval=0.2)):
        telegram.send_text(ALICE, "fast")
        await telegram.wait_for(lambda: shows(telegram, ALICE, SLOW), timeout=30)
    assert [c for c in telegram.calls if c.status == 429] == []
    assert len(telegram.calls_for("editMessageText")) >= 3
    assert texts(telegram, ALICE) == [SLOW], "the user saw one message and no error"


async def test_command_answers_in_a_busy_group_wait_for_the_group_limit(
    bot: BotRuntime, telegram: BotAPIEmulator
) -> None:
    group = -100555
    for _ in range(8):  # more than a group's burst, and more than the chat's queue holds
        telegram.send_text(group, "/help@memory_test_bot", user_id=ALICE, chat_type="supergroup")
    await telegram.wait_for(lambda: len(texts(telegram, group)) == 8, timeout=40)
    assert [c for c in telegram.calls if c.status == 429] == []
    answers = texts(telegram, group)
    assert answers.count(BUSY) == 2, "one runs, five wait, the rest are told to wait"
    assert answers.count(HELP) == 6


async def test_every_part_of_a_long_reply_is_stored_against_the_message(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    answer = "\n\n".join(f"Section {i}. " + "text " * 300 for i in range(6))
    model.enqueue(Reply(text=answer, chunk_chars=1000))
    async with BotRuntime(make_settings(max_reply_tokens=4000)):
        telegram.send_text(ALICE, "long")
        await telegram.wait_for(lambda: "Section 5" in "".join(texts(telegram, ALICE)), 20)
        stored = await stored_messages(database_url, ALICE)
    engine = create_engine(database_url)
    async with create_sessionmaker(engine)() as session:
        parts = list(
            await session.scalars(
                select(MessageDelivery)
                .where(MessageDelivery.message_id == stored[1].id)
                .order_by(MessageDelivery.position)
            )
        )
    await engine.dispose()
    sent = [m.message_id for m in telegram.bot_messages(ALICE)]
    assert len(sent) >= 2
    assert [p.telegram_message_id for p in parts] == sent
