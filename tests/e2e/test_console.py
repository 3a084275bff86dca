"""`python -m bot console` in a subprocess against the OpenAI emulator, fed through stdin."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from emulators.openai_api import OpenAIEmulator, Reply
from emulators.openai_tools import ScriptedCall, ToolCallsReply
from tests.e2e.test_cli import _env

TOKEN = "123456:console-test-token"
GUARD = 60  # seconds; only against a hang, never a measured limit


def console_env(model: OpenAIEmulator, database_url: str, **extra: str) -> dict[str, str]:
    return _env(
        TELEGRAM_BOT_TOKEN=TOKEN,
        OPENAI_BASE_URL=model.base_url,
        OPENAI_API_KEY=model.api_key,
        DATABASE_URL=database_url,
        SYSTEM_PROMPT="You are a console test.",
        LOG_LEVEL="WARNING",
        **extra,
    )


async def start(cwd: Path, env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "console",
        *args,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def converse(cwd: Path, env: dict[str, str], lines: str, *args: str) -> str:
    process = await start(cwd, env, *args)
    out, err = await asyncio.wait_for(process.communicate(lines.encode()), GUARD)
    assert process.returncode == 0, err.decode()
    return out.decode()


async def test_the_console_answers_each_line_with_memory(
    tmp_path: Path, model: OpenAIEmulator, database_url: str
) -> None:
    env = console_env(model, database_url)
    output = await converse(tmp_path, env, "hello\n\nagain\n")
    assert output == "Echo: hello\nEcho: again\n"
    assert model.chat_requests()[1]["messages"] == [
        {"role": "system", "content": "You are a console test."},
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": "Echo: hello"},
        {"role": "user", "content": "again"},
    ]


async def test_reset_starts_a_new_conversation_and_quit_leaves(
    tmp_path: Path, model: OpenAIEmulator, database_url: str
) -> None:
    env = console_env(model, database_url)
    output = await converse(tmp_path, env, "one\n/reset\ntwo\n/quit\nnever sent\n")
    assert output == "Echo: one\n(new conversation)\nEcho: two\n"
    assert [len(body["messages"]) for body in model.chat_requests()] == [2, 2]


async def test_chat_option_continues_that_chats_memory(
    tmp_path: Path, model: OpenAIEmulator, database_url: str
) -> None:
    env = console_env(model, database_url)
    await converse(tmp_path, env, "remember 555\n", "--chat", "555")
    await converse(tmp_path, env, "elsewhere\n")
    await converse(tmp_path, env, "what did I say?\n", "--chat", "555")
    contents = [m["content"] for m in model.chat_requests()[2]["messages"][1:]]
    assert contents == ["remember 555", "Echo: remember 555", "what did I say?"]


async def test_tokens_are_shown_as_they_arrive_and_a_cut_stream_is_explained(
    tmp_path: Path, model: OpenAIEmulator, database_url: str
) -> None:
    model.enqueue(Reply(text="Streaming words arrive", chunk_chars=5, hang_after=2))
    process = await start(tmp_path, console_env(model, database_url))
    assert process.stdin is not None and process.stdout is not None
    process.stdin.write(b"tell me\n")
    await process.stdin.drain()
    seen = b""
    while b"Streaming " not in seen:
        seen += await asyncio.wait_for(process.stdout.read(64), GUARD)
    assert model.open_streams == 1  # the server is still holding the stream open
    await model.stop()  # the connection drops mid-reply
    process.stdin.close()
    rest, _ = await asyncio.wait_for(process.communicate(), GUARD)
    output = (seen + rest).decode()
    assert output.startswith("Streaming \n\n[The reply was interrupted: ")
    assert process.returncode == 0


async def test_the_console_uses_the_configured_api_mode(
    tmp_path: Path, model: OpenAIEmulator, database_url: str
) -> None:
    env = console_env(model, database_url, OPENAI_API="responses")
    assert await converse(tmp_path, env, "via responses\n") == "Echo: via responses\n"
    assert model.bodies("/v1/responses")[0]["instructions"] == "You are a console test."


async def test_a_bad_backend_setting_exits_2(
    tmp_path: Path, model: OpenAIEmulator, database_url: str
) -> None:
    process = await start(tmp_path, console_env(model, database_url, OPENAI_API="soap"))
    _, err = await asyncio.wait_for(process.communicate(b"hi\n"), GUARD)
    assert process.returncode == 2
    assert err.decode().startswith("config error: OPENAI_API:")


async def test_the_console_needs_no_bot_token(
    tmp_path: Path, model: OpenAIEmulator, database_url: str
) -> None:
    env = console_env(model, database_url)
    del env["TELEGRAM_BOT_TOKEN"]
    assert await converse(tmp_path, env, "no token\n") == "Echo: no token\n"


async def test_the_console_runs_tools_and_shows_their_status(
    tmp_path: Path, model: OpenAIEmulator, database_url: str
) -> None:
    call = ScriptedCall("current_time", '{"timezone": "Asia/Tokyo"}', id="call_t")
    model.enqueue(ToolCallsReply(calls=[call]), "It is late in Tokyo.")
    env = console_env(model, database_url, BUILTIN_TOOLS="current_time")
    output = await converse(tmp_path, env, "Time in Tokyo?\n")
    assert "✅ `current_time`: «Asia/Tokyo»" in output
    assert output.endswith("It is late in Tokyo.\n")
    result = model.chat_requests()[1]["messages"][-1]
    assert result["tool_call_id"] == "call_t" and "Asia/Tokyo" in result["content"]
