"""Tools of a real MCP server (stdio) through the real bot: /stop during a call, the
confirmation buttons, a raising tool, the /tools buttons, and no server secret reaching the
model."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.db.models import Status
from bot.telegram.app import BotRuntime
from bot.telegram.tool_confirm import NOT_YOURS
from bot.telegram.tools_admin import REFUSAL
from emulators.bot_api import BotAPIEmulator
from emulators.bot_api_support import ChatMessage
from emulators.openai_api import OpenAIEmulator
from emulators.openai_tools import ScriptedCall, ToolCallsReply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages, texts

ROOT = Path(__file__).resolve().parents[2]
ALICE = 1001
BOB = 2002
SECRET = "mcp-env-secret-0815"


def local_server(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    env = {"MCP_TEST_PID_FILE": str(tmp_path / "pid"), "MCP_TEST_TOKEN": SECRET}
    return {
        "name": "local",
        "command": sys.executable,
        "args": ["-m", "tests.mcp_servers.tools_server"],
        "env": env,
        "cwd": str(ROOT),
        **extra,
    }


def with_buttons(telegram: BotAPIEmulator, chat_id: int) -> list[ChatMessage]:
    return [m for m in telegram.bot_messages(chat_id) if m.reply_markup]


def buttons(message: ChatMessage) -> list[dict[str, Any]]:
    assert message.reply_markup is not None
    return [b for row in message.reply_markup["inline_keyboard"] for b in row]


async def test_stop_reaches_a_running_tool_call(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
    tmp_path: Path,
) -> None:
    settings = make_settings(builtin_tools="", mcp_servers=[local_server(tmp_path)])
    slow = ScriptedCall("local__slow", '{"seconds": 3600}', id="call_slow")
    model.enqueue(ToolCallsReply(calls=[slow]))
    async with BotRuntime(settings):
        telegram.send_text(ALICE, "Take your time.")
        await telegram.wait_for(lambda: "🔧 local__slow…" in texts(telegram, ALICE), 30)
        telegram.send_text(ALICE, "/stop")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Stopped before any reply."), 20)
        assert "🔧 local__slow…" not in texts(telegram, ALICE), "the status line gave way"
        await ask(telegram, ALICE, "Still there?")
    statuses = [m.status for m in await stored_messages(database_url, ALICE)]
    assert statuses == [Status.COMPLETE, Status.FAILED, Status.COMPLETE, Status.COMPLETE]
    last = model.chat_requests()[-1]  # accepted: no call was left unanswered in it
    assert last["messages"][-1] == {"role": "user", "content": "Still there?"}


async def test_a_tool_marked_confirm_asks_with_buttons_first(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = local_server(tmp_path, confirm=["search"])
    settings = make_settings(builtin_tools="", mcp_servers=[server])
    search = ScriptedCall("local__search", '{"query": "cats", "limit": 1}', id="call_s")
    again = ScriptedCall("local__search", '{"query": "dogs"}', id="call_d")
    model.enqueue(ToolCallsReply(calls=[search]), "Found cats.")
    model.enqueue(ToolCallsReply(calls=[again]), "You said no.")
    async with BotRuntime(settings):
        telegram.send_text(ALICE, "Search for cats")
        await telegram.wait_for(lambda: bool(with_buttons(telegram, ALICE)), 30)
        [question] = with_buttons(telegram, ALICE)
        assert (
            question.text == "The assistant wants to run the tool local__search «cats». Allow it?"
        )
        run, dont = buttons(question)
        assert (run["text"], dont["text"]) == ("Run", "Don't run")
        telegram.press_button(ALICE, question.message_id, run["callback_data"], user_id=BOB)
        await telegram.wait_for(lambda: bool(telegram.calls_for("answerCallbackQuery")), 10)
        assert telegram.calls_for("answerCallbackQuery")[0].params["text"] == NOT_YOURS
        telegram.press_button(ALICE, question.message_id, run["callback_data"])
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Found cats."), 30)
        assert shows(telegram, ALICE, "✅ Allowed: local__search")

        telegram.send_text(ALICE, "Now dogs")
        await telegram.wait_for(
            lambda: (
                len(with_buttons(telegram, ALICE)) == 1
                and any(m.text.endswith("«dogs». Allow it?") for m in with_buttons(telegram, ALICE))
            ),
            30,
        )
        [second] = with_buttons(telegram, ALICE)
        telegram.press_button(ALICE, second.message_id, buttons(second)[1]["callback_data"])
        await telegram.wait_for(lambda: shows(telegram, ALICE, "You said no."), 30)
        assert shows(telegram, ALICE, "❌ Not run: local__search")
    requests = model.chat_requests()
    assert requests[1]["messages"][-1] == {
        "role": "tool",
        "tool_call_id": "call_s",
        "content": "result 1 for cats",
    }
    declined = requests[3]["messages"][-1]
    assert declined["tool_call_id"] == "call_d"
    assert declined["content"] == "The user declined to run this tool."
    offered = {t["function"]["name"] for t in requests[0]["tools"]}
    assert {"local__search", "local__slow", "local__secret_check"} <= offered
    assert SECRET not in json.dumps(requests), "no MCP secret reaches the model"
    assert caplog.records and SECRET not in caplog.text, "nor a log line"


async def test_a_raising_tool_gives_the_model_an_error_result(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    tmp_path: Path,
) -> None:
    settings = make_settings(builtin_tools="", mcp_servers=[local_server(tmp_path)])
    model.enqueue(ToolCallsReply(calls=[ScriptedCall("local__boom", "{}", id="c")]), "It broke.")
    async with BotRuntime(settings):
        telegram.send_text(ALICE, "Break something")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "It broke."), 30)
    result = model.chat_requests()[1]["messages"][-1]
    assert result["tool_call_id"] == "c" and "Error executing tool boom" in result["content"]


async def test_admins_turn_tools_off_per_chat_with_buttons(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(
        admin_user_ids=frozenset({ALICE}), builtin_tools="current_time,fetch_url"
    )
    async with BotRuntime(settings):
        telegram.send_text(BOB, "/tools")
        await telegram.wait_for(lambda: shows(telegram, BOB, REFUSAL), 10)
        telegram.send_text(ALICE, "/tools")
        await telegram.wait_for(lambda: bool(with_buttons(telegram, ALICE)), 10)
        [listing] = with_buttons(telegram, ALICE)
        assert [b["text"] for b in buttons(listing)] == ["✅ current_time", "✅ fetch_url"]
        telegram.press_button(ALICE, listing.message_id, "tools:fetch_url")
        await telegram.wait_for(
            lambda: (
                [b["text"] for b in buttons(with_buttons(telegram, ALICE)[0])]
                == ["✅ current_time", "❌ fetch_url"]
            ),
            10,
        )
        await ask(telegram, ALICE, "Hello")
        telegram.send_text(ALICE, "/tools on fetch_url")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "fetch_url is on in this chat."), 10)
        await ask(telegram, BOB, "Hello")  # another chat never had it off
        await ask(telegram, ALICE, "Again")
    alice, bob, alice_again = model.chat_requests()
    assert [t["function"]["name"] for t in alice["tools"]] == ["current_time"]
    assert [t["function"]["name"] for t in bob["tools"]] == ["current_time", "fetch_url"]
    assert [t["function"]["name"] for t in alice_again["tools"]] == ["current_time", "fetch_url"]
