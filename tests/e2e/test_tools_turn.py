"""Function calling through the real bot: the model → tools → model loop with its exact
request bodies, the live status lines, the stored exchange replayed after a restart, the step
limit, the URL tool's refusal, the Responses API and completions mode."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy import select

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import MessageContent, Status
from bot.notices import Code
from bot.telegram.app import BotRuntime
from bot.tools.builtins import current_time, fetch_url
from bot.tools.loop import LIMIT_TEXT
from bot.wording import render
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from emulators.openai_tools import ScriptedCall, ToolCallsReply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages

ALICE = 1001
SYSTEM = {"role": "system", "content": "You are a test assistant."}
QUESTION = "What time is it in Tokyo and in Berlin?"
ANSWER = "Tokyo is seven or eight hours ahead of Berlin."
TIME_TOOL = {
    "type": "function",
    "function": {
        "name": "current_time",
        "description": current_time.SPEC.description,
        "parameters": current_time.SPEC.parameters,
    },
}
TOKYO = ScriptedCall("current_time", '{"timezone": "Asia/Tokyo"}', id="call_tokyo")
BERLIN = ScriptedCall("current_time", '{"timezone": "Europe/Berlin"}', id="call_berlin")


def calls_of(*calls: ScriptedCall) -> list[dict[str, Any]]:
    return [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in calls
    ]


def shown_texts(telegram: BotAPIEmulator) -> list[str]:
    """Every text the bot sent or edited in, in order."""
    calls = telegram.calls_for("sendMessage") + telegram.calls_for("editMessageText")
    return [str(c.params.get("text")) for c in sorted(calls, key=lambda c: c.at)]


async def part_kinds(database_url: str, message_id: int) -> list[str]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.scalars(
                select(MessageContent.kind)
                .where(MessageContent.message_id == message_id)
                .order_by(MessageContent.position)
            )
            return list(rows)
    finally:
        await engine.dispose()


async def two_step_turn(telegram: BotAPIEmulator, model: OpenAIEmulator) -> None:
    # The next step waits past the edit interval, so the status line is shown (the live
    # view keeps the edit cadence: a line replaced sooner is never sent).
    model.enqueue(
        ToolCallsReply(text="Let me check.", calls=[TOKYO]),
        ToolCallsReply(calls=[BERLIN], chunk_chars=3, chunk_delay=0.15),
        ANSWER,
    )
    telegram.send_text(ALICE, QUESTION)
    await telegram.wait_for(lambda: shows(telegram, ALICE, ANSWER), timeout=20)


async def test_a_two_step_tool_loop_sends_exactly_these_bodies(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    settings = make_settings(builtin_tools="current_time")
    async with BotRuntime(settings):
        await two_step_turn(telegram, model)
    first, second, third = model.chat_requests()
    user = first["user"]
    assert re.fullmatch(r"[0-9a-f]{32}", user)
    base = {
        "model": "gpt-4o-mini",
        "max_tokens": 1024,
        "stream": True,
        "stream_options": {"include_usage": True},
        "user": user,
        "tools": [TIME_TOOL],
    }
    question = [SYSTEM, {"role": "user", "content": QUESTION}]
    assert first == {**base, "messages": question}
    tokyo = second["messages"][-1]["content"]
    assert "Asia/Tokyo" in tokyo and not tokyo.startswith("Error")
    step_one = [
        {"role": "assistant", "content": "Let me check.", "tool_calls": calls_of(TOKYO)},
        {"role": "tool", "tool_call_id": "call_tokyo", "content": tokyo},
    ]
    assert second == {**base, "messages": question + step_one}
    berlin = third["messages"][-1]["content"]
    assert "Europe/Berlin" in berlin
    step_two = [
        {"role": "assistant", "content": None, "tool_calls": calls_of(BERLIN)},
        {"role": "tool", "tool_call_id": "call_berlin", "content": berlin},
    ]
    assert third == {**base, "messages": question + step_one + step_two}

    seen = shown_texts(telegram)
    assert "✅ current_time: «Asia/Tokyo»" in seen
    assert seen[-1] == ANSWER, "the answer replaces the status lines"

    _, reply = await stored_messages(database_url, ALICE)
    assert reply.status == Status.COMPLETE and reply.has_parts
    kinds = ["text", "tool_call", "tool_result", "tool_call", "tool_result", "text"]
    assert await part_kinds(database_url, reply.id) == kinds
    # The text form (searched, exported, summarized) holds the calls and results too.
    assert 'current_time({"timezone": "Asia/Tokyo"})' in reply.content and tokyo in reply.content


async def test_a_restart_replays_the_tool_exchange_validly(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
) -> None:
    settings = make_settings(builtin_tools="current_time")
    async with BotRuntime(settings):
        await two_step_turn(telegram, model)
    third = model.chat_requests()[2]
    async with BotRuntime(settings):  # a new process, the same database
        await ask(telegram, ALICE, "Thanks!")
    replay = model.chat_requests()[3]
    # The emulator refuses unpaired calls and results with OpenAI's 400: it answered.
    assert replay["messages"] == [
        *third["messages"],
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "Thanks!"},
    ]
    assert replay["tools"] == [TIME_TOOL]


async def test_failed_calls_and_the_step_limit_give_the_model_error_results(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(builtin_tools="current_time", tools_max_steps=1)
    model.enqueue(
        ToolCallsReply(
            calls=[
                ScriptedCall("no_such_tool", "{}", id="call_x"),
                ScriptedCall("current_time", '{"timezone": ', id="call_bad"),
                ScriptedCall("current_time", '{"timezone": "Mars/Olympus"}', id="call_mars"),
            ],
            interleave=True,
        ),
        ToolCallsReply(calls=[TOKYO], chunk_chars=3, chunk_delay=0.15),
        "I could not find out.",
    )
    async with BotRuntime(settings):
        telegram.send_text(ALICE, QUESTION)
        await telegram.wait_for(lambda: shows(telegram, ALICE, "I could not find out."), 20)
    first, second, third = model.chat_requests()
    results = {m["tool_call_id"]: m["content"] for m in second["messages"] if m["role"] == "tool"}
    assert "unknown tool 'no_such_tool'" in results["call_x"]
    assert "invalid arguments" in results["call_bad"]
    assert "unknown time zone 'Mars/Olympus'" in results["call_mars"]
    assert first["tools"] == [TIME_TOOL]
    assert "tools" not in second, "past the step limit the model must answer in words"
    assert third["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_tokyo",
        "content": LIMIT_TEXT,
    }
    assert "tools" not in third
    assert any(t.startswith("⚠️ no_such_tool: no such tool") for t in shown_texts(telegram))


async def test_the_url_tool_refuses_loopback(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(builtin_tools="fetch_url")
    call = ScriptedCall("fetch_url", '{"url": "http://127.0.0.1/"}', id="call_url")
    late = Reply(text="That address is not reachable for me.", first_token_delay=1.5)
    model.enqueue(ToolCallsReply(calls=[call]), late)
    async with BotRuntime(settings):
        telegram.send_text(ALICE, "Read http://127.0.0.1/ for me")
        await telegram.wait_for(
            lambda: shows(telegram, ALICE, "That address is not reachable for me."), 20
        )
    second = model.chat_requests()[1]
    result = second["messages"][-1]
    assert result["tool_call_id"] == "call_url"
    assert result["content"].startswith("Error: refused:")
    assert second["tools"][0]["function"]["name"] == fetch_url.SPEC.name
    assert any("⚠️ fetch_url: «http://127.0.0.1/»" in t for t in shown_texts(telegram))


async def test_the_responses_api_gets_function_call_items(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(builtin_tools="current_time", openai_api="responses")
    model.enqueue(ToolCallsReply(text="Checking.", calls=[TOKYO]), ANSWER)
    async with BotRuntime(settings):
        telegram.send_text(ALICE, QUESTION)
        await telegram.wait_for(lambda: shows(telegram, ALICE, ANSWER), timeout=20)
    first, second = model.bodies("/v1/responses")
    assert first["tools"] == [
        {
            "type": "function",
            "name": "current_time",
            "description": current_time.SPEC.description,
            "parameters": current_time.SPEC.parameters,
        }
    ]
    output = second["input"][-1]
    assert second["input"][1:] == [
        {"role": "assistant", "content": "Checking."},
        {
            "type": "function_call",
            "call_id": "call_tokyo",
            "name": "current_time",
            "arguments": '{"timezone": "Asia/Tokyo"}',
        },
        {"type": "function_call_output", "call_id": "call_tokyo", "output": output["output"]},
    ]
    assert "Asia/Tokyo" in output["output"]


async def test_completions_mode_offers_no_tools(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue("Hi there.")
    settings = make_settings(openai_api="completions", builtin_tools="current_time")
    async with BotRuntime(settings):
        telegram.send_text(ALICE, "Hello")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Hi there."), timeout=15)
    [body] = model.bodies("/v1/completions")
    assert "tools" not in body


async def test_tools_can_be_turned_off(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    async with BotRuntime(make_settings(tools_enabled=False, builtin_tools="current_time")):
        await ask(telegram, ALICE, "Hello")
    assert "tools" not in model.chat_requests()[0]


def entities(value: Any) -> list[dict[str, Any]]:
    """Entities as PTB sent them: JSON text in a form body, a list in a JSON one."""
    found = json.loads(value) if isinstance(value, str) else value
    return list(found or [])


async def test_show_reasoning_shows_arguments_and_a_result_excerpt_collapsed(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(builtin_tools="current_time", show_reasoning=True)
    async with BotRuntime(settings):
        await two_step_turn(telegram, model)
    edits = [c.params for c in telegram.calls_for("editMessageText")]
    collapsed = [
        p
        for p in edits
        if any(e["type"] == "expandable_blockquote" for e in entities(p.get("entities")))
    ]
    assert collapsed, "the tool details were shown collapsed"
    text = str(collapsed[0]["text"])
    assert 'current_time({"timezone": "Asia/Tokyo"})\n→ ' in text
    assert "✅ current_time: «Asia/Tokyo»" in text


async def test_a_generated_image_is_sent_as_a_photo(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(builtin_tools="generate_image")
    draw = ScriptedCall("generate_image", '{"prompt": "a lighthouse"}', id="call_img")
    model.enqueue(ToolCallsReply(calls=[draw]), "Here is your lighthouse.")
    async with BotRuntime(settings):
        telegram.send_text(ALICE, "Draw a lighthouse")
        await telegram.wait_for(lambda: bool(telegram.calls_for("sendPhoto")), timeout=20)
    assert shows(telegram, ALICE, "Here is your lighthouse.")
    [body] = model.bodies("/v1/images/generations")
    assert body["prompt"] == "a lighthouse"
    result = model.chat_requests()[1]["messages"][-1]
    assert result["tool_call_id"] == "call_img" and not result["content"].startswith("Error")


async def test_a_model_that_keeps_calling_past_the_limit_is_not_asked_forever(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(builtin_tools="current_time", tools_max_steps=1)
    again = ScriptedCall("current_time", "{}", id="call_again")
    model.enqueue(
        ToolCallsReply(calls=[TOKYO]), ToolCallsReply(calls=[BERLIN]), ToolCallsReply(calls=[again])
    )
    async with BotRuntime(settings):
        telegram.send_text(ALICE, QUESTION)
        await telegram.wait_for(lambda: shows(telegram, ALICE, render(Code.EMPTY_REPLY)), 20)
    assert len(model.chat_requests()) == 3, "one round to answer the limit, then the turn ends"


async def test_export_gives_the_tool_exchange_in_the_chat_format(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    async with BotRuntime(make_settings(builtin_tools="current_time")):
        await two_step_turn(telegram, model)
        telegram.send_text(ALICE, "/export")
        await telegram.wait_for(lambda: len(telegram.calls_for("sendDocument")) == 2, 15)
        jsonl = telegram.calls_for("sendDocument")[1].params["document"].data.decode()
    [line] = [json.loads(line) for line in jsonl.splitlines()]
    third = model.chat_requests()[2]["messages"]
    assert line["messages"] == [*third[1:], {"role": "assistant", "content": ANSWER}]
