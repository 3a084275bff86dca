"""Failure paths of a turn: every fault gives the user a clear answer and loses nothing."""

from __future__ import annotations

import pytest

from bot.db.models import Status
from bot.errors import (
    LLMAuthError,
    LLMNotFoundError,
    LLMServerError,
    LLMTimeoutError,
)
from bot.notices import Code
from bot.telegram.app import BotRuntime
from bot.wording import render
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages, texts

ALICE = 1001
BOB = 2002


@pytest.mark.parametrize(
    ("fault", "attempts", "explained"),
    [
        (Reply(status=401), 1, render(LLMAuthError.problem)),
        (Reply(status=404), 1, render(LLMNotFoundError.problem)),
        (Reply(status=500), 3, render(LLMServerError.problem)),  # retried twice, then explained
    ],
    ids=["bad-key", "unknown-model", "server-error"],
)
async def test_a_model_error_before_any_text_is_one_clear_line_and_keeps_the_message(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
    fault: Reply,
    attempts: int,
    explained: str,
) -> None:
    model.enqueue(*[fault] * attempts)
    async with BotRuntime(make_settings()):
        telegram.send_text(ALICE, "Are you there?")
        await telegram.wait_for(lambda: texts(telegram, ALICE) == [explained])
        await ask(telegram, ALICE, "And now?")

    assert len(model.chat_requests()) == attempts + 1
    assert model.chat_requests()[-1]["messages"][1:] == [
        {"role": "user", "content": "Are you there?"},
        {"role": "user", "content": "And now?"},
    ], "the failed turn's message stays in memory"
    stored = await stored_messages(database_url, ALICE)
    assert [(m.role, m.status) for m in stored[:2]] == [
        ("user", Status.COMPLETE),
        ("assistant", Status.FAILED),
    ]


async def test_a_rate_limited_model_is_retried_after_retry_after_before_the_first_token(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(status=429, retry_after=0.2), Reply(status=503))
    await ask(telegram, ALICE, "patience")
    assert len(model.chat_requests()) == 3
    assert texts(telegram, ALICE) == ["Echo: patience"], "the user never saw the failures"


async def test_a_stream_cut_after_some_text_keeps_it_with_a_notice(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    model.enqueue(Reply(text="The first part. The second part.", chunk_chars=5, cut_after=3))
    telegram.send_text(ALICE, "tell me")
    await telegram.wait_for(lambda: "interrupted" in "".join(texts(telegram, ALICE)))
    [shown] = texts(telegram, ALICE)
    assert shown.startswith("The first part.\n\n[The reply was interrupted")
    assert len(model.chat_requests()) == 1, "no retry once text was shown"

    await ask(telegram, ALICE, "go on")
    assert model.chat_requests()[-1]["messages"][-2] == {
        "role": "assistant",
        "content": "The first part.",
    }, "what the user saw is remembered, without the notice"
    stored = await stored_messages(database_url, ALICE)
    assert stored[1].status == Status.INTERRUPTED


async def test_a_model_that_hangs_times_out_with_a_clear_message(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(hang_before_headers=True))
    async with BotRuntime(make_settings(openai_timeout=0.5)):
        telegram.send_text(ALICE, "hello?")
        await telegram.wait_for(lambda: texts(telegram, ALICE) == [render(LLMTimeoutError.problem)])
        await ask(telegram, ALICE, "still there?")


async def test_a_too_long_conversation_error_from_the_server_is_explained(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.context_windows["gpt-4o-mini"] = 1030  # smaller than our configured context
    telegram.send_text(ALICE, "hi")
    await telegram.wait_for(lambda: any("/reset" in t for t in texts(telegram, ALICE)))


async def test_an_empty_reply_is_explained(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(text=""))
    telegram.send_text(ALICE, "say nothing")
    await telegram.wait_for(lambda: texts(telegram, ALICE) == [render(Code.EMPTY_REPLY)])


async def test_a_reply_cut_by_the_token_limit_says_so(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(text="Half an answer", finish_reason="length"))
    telegram.send_text(ALICE, "long question")
    await telegram.wait_for(
        lambda: shows(telegram, ALICE, f"Half an answer\n\n{render(Code.CUT_BY_LIMIT)}")
    )


async def test_a_429_on_edit_is_absorbed_and_the_final_text_arrives(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    answer = " ".join(f"token{i}" for i in range(40))
    model.enqueue(Reply(text=answer, chunk_chars=10, chunk_delay=0.05))
    telegram.fail_next(
        "editMessageText",
        status=429,
        description="Too Many Requests: retry after 1",
        retry_after=1,
        count=2,
    )
    telegram.send_text(ALICE, "stream please")
    await telegram.wait_for(lambda: shows(telegram, ALICE, answer), timeout=20)
    assert [c.status for c in telegram.calls_for("editMessageText")].count(429) == 2
    assert texts(telegram, ALICE) == [answer], "one message, no error shown"


async def test_a_reply_the_user_deleted_mid_stream_is_sent_again(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    answer = " ".join(f"piece{i}" for i in range(30))
    model.enqueue(Reply(text=answer, chunk_chars=10, chunk_delay=0.05))
    telegram.fail_next(
        "editMessageText", status=400, description="Bad Request: message to edit not found"
    )
    telegram.send_text(ALICE, "go")
    await telegram.wait_for(lambda: shows(telegram, ALICE, answer), timeout=20)


async def test_a_user_who_blocked_the_bot_does_not_stop_other_chats(
    bot: BotRuntime, telegram: BotAPIEmulator, database_url: str
) -> None:
    telegram.fail_next(
        "sendMessage", status=403, description="Forbidden: bot was blocked by the user", chat_id=BOB
    )
    telegram.send_text(BOB, "bye")
    await ask(telegram, ALICE, "hello")
    await telegram.wait_for(
        lambda: any(
            c.status == 403 and c.params.get("chat_id") == BOB
            for c in telegram.calls_for("sendMessage")
        ),
        timeout=10,
    )
    stored = await stored_messages(database_url, BOB)
    assert [m.content for m in stored] == ["bye", "Echo: bye"], "the reply is kept anyway"


async def test_network_errors_while_polling_lose_no_update(
    bot: BotRuntime, telegram: BotAPIEmulator
) -> None:
    telegram.drop_next("getUpdates", count=2)
    await ask(telegram, ALICE, "one")
    await ask(telegram, ALICE, "two")
