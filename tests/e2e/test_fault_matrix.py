"""Each model and Telegram fault in one chat, while another chat keeps talking to the bot.

For every fault: the user gets one clear sentence (or the text so far with a notice), their
message stays in memory, partial text is stored as `interrupted`, the next turn works, and the
other chat is answered normally. Faults are aimed at one question with a model `responder`,
so the other chat's requests are never hit.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.db.models import Status
from bot.errors import (
    LLMConnectionError,
    LLMProtocolError,
    LLMRateLimitError,
    LLMServerError,
    LLMTimeoutError,
)
from bot.notices import Code, Notice
from bot.telegram.app import BotRuntime
from bot.wording import render
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages, texts

ALICE = 1001
BOB = 2002
TRIGGER = "this one breaks"
PARTIAL = "Some text that was streamed. And then the rest of the answer."


def faulty(fault: Reply) -> Callable[[dict[str, Any]], Reply]:
    """Answer TRIGGER (every attempt) with `fault`, everything else with the usual echo."""

    def respond(body: dict[str, Any]) -> Reply:
        question = body["messages"][-1]["content"]
        return fault if question == TRIGGER else Reply(text=f"Echo: {question}")

    return respond


async def assert_next_turn_remembers_the_fault(
    telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str, status: Status
) -> None:
    """The next turn is answered, with the failed turn's message in its prompt."""
    await ask(telegram, ALICE, "and now?")
    prompt = model.chat_requests()[-1]["messages"]
    assert {"role": "user", "content": TRIGGER} in prompt, "the user message was kept"
    stored = await stored_messages(database_url, ALICE)
    assert [(m.content, m.status) for m in stored][:1] == [(TRIGGER, Status.COMPLETE)]
    assert stored[1].status == status
    assert [m.status for m in stored[2:]] == [Status.COMPLETE, Status.COMPLETE]


BEFORE_TEXT = {
    "429-retry-after": (Reply(status=429, retry_after=0.1), render(LLMRateLimitError.problem)),
    "500": (Reply(status=500), render(LLMServerError.problem)),
    "503": (Reply(status=503), render(LLMServerError.problem)),
    "malformed-json": (Reply(text=PARTIAL, malformed_after=0), render(LLMProtocolError.problem)),
    "cut-before-text": (Reply(text=PARTIAL, cut_after=0), render(LLMConnectionError.problem)),
}


@pytest.mark.parametrize(("fault", "sentence"), BEFORE_TEXT.values(), ids=BEFORE_TEXT.keys())
async def test_a_fault_before_any_text_is_one_sentence_and_other_chats_go_on(
    bot: BotRuntime,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
    fault: Reply,
    sentence: str,
) -> None:
    model.responder = faulty(fault)
    telegram.send_text(ALICE, TRIGGER)
    await ask(telegram, BOB, "meanwhile")
    await telegram.wait_for(lambda: texts(telegram, ALICE) == [sentence])
    await assert_next_turn_remembers_the_fault(telegram, model, database_url, Status.FAILED)


AFTER_TEXT = {
    "cut": (Reply(text=PARTIAL, chunk_chars=6, cut_after=5), LLMConnectionError),
    "hang": (Reply(text=PARTIAL, chunk_chars=6, hang_after=5), LLMTimeoutError),
    "malformed-sse": (Reply(text=PARTIAL, chunk_chars=6, malformed_after=5), LLMProtocolError),
}


@pytest.mark.parametrize(("fault", "error"), AFTER_TEXT.values(), ids=AFTER_TEXT.keys())
async def test_a_fault_after_some_text_keeps_it_as_interrupted_and_other_chats_go_on(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
    fault: Reply,
    error: type[Exception],
) -> None:
    model.responder = faulty(fault)
    async with BotRuntime(make_settings(openai_timeout=1.0)):
        telegram.send_text(ALICE, TRIGGER)
        await ask(telegram, BOB, "meanwhile")
        notice = render(Notice(Code.INTERRUPTED, {"reason": getattr(error, "problem", "")}))
        await telegram.wait_for(lambda: any(t.endswith(notice) for t in texts(telegram, ALICE)))
        [shown] = texts(telegram, ALICE)
        partial = shown.removesuffix(notice).strip()
        assert partial and PARTIAL.startswith(partial)
        assert (
            len([r for r in model.chat_requests() if r["messages"][-1]["content"] == TRIGGER]) == 1
        )
        await assert_next_turn_remembers_the_fault(
            telegram, model, database_url, Status.INTERRUPTED
        )
        prompt = model.chat_requests()[-1]["messages"]
        assert {"role": "assistant", "content": partial} in prompt, "what was shown is remembered"


async def test_a_refused_connection_is_explained_and_the_model_coming_back_is_used(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    port = int(model.base_url.rsplit(":", 1)[1].split("/")[0])
    await model.stop()  # nothing listens on the port: connections are refused
    telegram.send_text(ALICE, TRIGGER)
    await telegram.wait_for(
        lambda: texts(telegram, ALICE) == [render(LLMConnectionError.problem)], timeout=20
    )
    await model.start(port)
    await assert_next_turn_remembers_the_fault(telegram, model, database_url, Status.FAILED)
    await ask(telegram, BOB, "hello")


async def test_a_429_on_send_is_waited_out_and_the_reply_arrives_once(
    bot: BotRuntime, telegram: BotAPIEmulator
) -> None:
    telegram.fail_next(
        "sendMessage",
        status=429,
        description="Too Many Requests: retry after 1",
        retry_after=1,
        chat_id=ALICE,
    )
    telegram.send_text(ALICE, "hello")
    await ask(telegram, BOB, "meanwhile")
    await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: hello"))
    assert texts(telegram, ALICE) == ["Echo: hello"]
    assert [
        c.status for c in telegram.calls_for("sendMessage") if c.params["chat_id"] == ALICE
    ] == [
        429,
        200,
    ]


async def test_a_connection_lost_while_sending_is_retried_and_the_reply_arrives_once(
    bot: BotRuntime, telegram: BotAPIEmulator
) -> None:
    telegram.drop_next("sendMessage")
    await ask(telegram, ALICE, "hello")
    assert texts(telegram, ALICE) == ["Echo: hello"]
    await ask(telegram, ALICE, "again")


async def test_a_blocked_bot_is_not_retried_and_the_user_can_come_back(
    bot: BotRuntime, telegram: BotAPIEmulator, database_url: str
) -> None:
    telegram.fail_next(
        "sendMessage",
        status=403,
        description="Forbidden: bot was blocked by the user",
        chat_id=ALICE,
    )
    telegram.send_text(ALICE, "hi")
    await ask(telegram, BOB, "meanwhile")
    await telegram.wait_for(lambda: len(telegram.calls_for("sendMessage")) >= 2)
    await ask(telegram, ALICE, "unblocked now")
    sent = [c.status for c in telegram.calls_for("sendMessage") if c.params["chat_id"] == ALICE]
    assert sent == [403, 200], "a 403 is final: no retry"
    assert [m.status for m in await stored_messages(database_url, ALICE)] == [Status.COMPLETE] * 4
