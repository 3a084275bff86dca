"""The MCP client against a real MCP server (the SDK's `MCPServer`), over stdio and
streamable HTTP on 127.0.0.1: listing, namespacing, calls, failures, reconnection, secrets."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.parts import ToolCallPart as ToolCall
from bot.tool_config import McpServerConfig
from bot.tools.mcp_client import McpConnection, McpManager
from bot.tools.registry import ToolRegistry
from bot.tools.runner import ToolRunner
from bot.tools.types import ToolContext

ROOT = Path(__file__).resolve().parents[2]
SERVER = ("-m", "tests.mcp_servers.tools_server")
TOKEN = "mcp-secret-token-4711"
DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - the stdio servers' stderr, for the session
NAMES = ["boom", "dotted_name", "huge", "search", "secret_check", "slow"]


async def wait_until(predicate: object, limit: float = 30.0) -> None:
    async with asyncio.timeout(limit):
        while not predicate():  # type: ignore[operator]  # noqa: ASYNC110 - state of a subprocess
            await asyncio.sleep(0.05)


def stdio_config(tmp_path: Path, **extra: object) -> McpServerConfig:
    env = {"MCP_TEST_PID_FILE": str(tmp_path / "pid"), "MCP_TEST_TOKEN": TOKEN}
    return McpServerConfig(
        name="local", command=sys.executable, args=SERVER, env=env, cwd=str(ROOT), **extra
    )


def _dead(tmp_path: Path) -> bool:
    """Whether the server process is gone or a zombie (killed, not yet reaped)."""
    status = Path(f"/proc/{int((tmp_path / 'pid').read_text())}/status")
    try:
        return "State:\tZ" in status.read_text()
    except FileNotFoundError:
        return True


class HttpServer:
    """The test server as a subprocess listening on 127.0.0.1; restartable on its port."""

    def __init__(self) -> None:
        self.process: asyncio.subprocess.Process | None = None
        self.port = 0

    async def start(self) -> None:
        env = {**os.environ, "MCP_TEST_TOKEN": TOKEN}
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, *SERVER, "--http", "--port", str(self.port),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL, env=env, cwd=ROOT,
        )  # fmt: skip
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 30)
        self.port = int(line.split()[1])

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"


@pytest.fixture
async def http_server() -> AsyncIterator[HttpServer]:
    server = HttpServer()
    await server.start()
    yield server
    await server.kill()


@contextlib.asynccontextmanager
async def connected(config: McpServerConfig) -> AsyncIterator[tuple[McpConnection, ToolRunner]]:
    registry = ToolRegistry()
    connection = McpConnection(config, registry, connect_timeout=30, errlog=DEVNULL)
    await connection.start()
    try:
        yield connection, ToolRunner(registry, timeout=20, max_result_bytes=4_000)
    finally:
        await connection.close()


def call(name: str, arguments: str = "{}", call_id: str = "call_1") -> ToolCall:
    return ToolCall(call_id, name, arguments)


CONTEXT = ToolContext()


async def test_stdio_server_tools_are_listed_namespaced_and_callable(tmp_path: Path) -> None:
    async with connected(stdio_config(tmp_path)) as (_, runner):
        specs = runner.registry.specs()
        assert [s.name for s in specs] == [f"local__{n}" for n in NAMES]
        search = next(s for s in specs if s.name == "local__search")
        assert search.remote_name == "search" and search.source == "mcp:local"
        assert search.parameters["required"] == ["query"]
        dotted = await runner.run(call("local__dotted_name", '{"value": "v"}'), CONTEXT)
        assert dotted.content_text == "dotted v"
        result = await runner.run(call("local__search", '{"query": "q", "limit": 2}'), CONTEXT)
        assert (result.content_text, result.is_error) == ("result 1 for q\nresult 2 for q", False)
        secret = await runner.run(
            call("local__secret_check", f'{{"expected_length": {len(TOKEN)}}}'), CONTEXT
        )
        assert secret.content_text == "token present: True, length matches: True"


async def test_stdio_tool_failures_become_error_results(tmp_path: Path) -> None:
    async with connected(stdio_config(tmp_path)) as (_, runner):
        boom, unknown = await runner.run_all(
            [call("local__boom", call_id="a"), call("local__nope", call_id="d")], CONTEXT
        )
        # 10 MB through the SDK's stdio framing takes seconds of CPU: a generous bound.
        huge = await runner.run(call("local__huge", call_id="c"), CONTEXT, seconds=300)
        slow = await runner.run(call("local__slow", call_id="b"), CONTEXT, seconds=1.0)
        assert (boom.status, boom.is_error) == ("tool_error", True)
        assert "boom" in boom.content_text
        assert slow.status == "timeout"
        assert huge.truncated and len(huge.content_text.encode()) <= 4_000
        assert unknown.status == "unknown_tool"
        after = await runner.run(call("local__search", '{"query": "still"}'), CONTEXT)
        assert after.status == "ok"  # a hung call leaves the session usable


async def test_killed_stdio_server_gives_an_error_then_reconnects(tmp_path: Path) -> None:
    async with connected(stdio_config(tmp_path)) as (connection, runner):
        os.kill(int((tmp_path / "pid").read_text()), signal.SIGKILL)
        await wait_until(lambda: _dead(tmp_path))
        result = await runner.run(call("local__search", '{"query": "x"}'), CONTEXT)
        assert (result.status, result.is_error) == ("unavailable", True)
        assert "local" in result.content_text
        assert next(s.name for s in runner.registry.specs()) == "local__boom"  # still cached
        await wait_until(lambda: connection.state == "ready" and connection.connects == 2)
        again = await runner.run(call("local__search", '{"query": "x", "limit": 1}'), CONTEXT)
        assert again.content_text == "result 1 for x"


async def test_http_server_with_headers_lists_calls_and_reconnects(
    http_server: HttpServer,
) -> None:
    config = McpServerConfig(
        name="remote", url=http_server.url, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    async with connected(config) as (connection, runner):
        assert connection.state == "ready"
        assert [s.name for s in runner.registry.specs()] == [f"remote__{n}" for n in NAMES]
        ok = await runner.run(call("remote__search", '{"query": "h", "limit": 1}'), CONTEXT)
        assert ok.content_text == "result 1 for h"
        huge = await runner.run(call("remote__huge", '{"megabytes": 10}'), CONTEXT, seconds=300)
        assert huge.truncated and huge.status == "ok"
        await http_server.kill()
        dead = await runner.run(call("remote__search", '{"query": "h"}'), CONTEXT)
        assert (dead.status, dead.is_error) == ("unavailable", True)
        await http_server.start()
        await wait_until(lambda: connection.state == "ready" and connection.connects == 2)
        back = await runner.run(call("remote__search", '{"query": "b", "limit": 1}'), CONTEXT)
        assert back.content_text == "result 1 for b"


async def test_wrong_header_never_connects_and_secrets_stay_out_of_logs(
    http_server: HttpServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "Bearer wrong-secret-value-0815"
    config = McpServerConfig(name="remote", url=http_server.url, headers={"Authorization": wrong})
    assert "wrong-secret" not in repr(config)
    registry = ToolRegistry()
    manager = McpManager(registry, [config], connect_timeout=5, errlog=DEVNULL)
    await manager.start()
    try:
        assert manager.states() == {"remote": "down"}
        assert registry.specs() == []
        runner = ToolRunner(registry, timeout=5, max_result_bytes=1_000)
        result = await runner.run(call("remote__search", '{"query": "x"}'), CONTEXT)
        assert result.status == "unknown_tool"
    finally:
        await manager.close()
    assert "failed" in caplog.text
    assert "wrong-secret-value-0815" not in caplog.text


async def test_env_secret_never_reaches_logs_or_tool_descriptions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with connected(stdio_config(tmp_path)) as (connection, runner):
        offered = str(runner.registry.request_tools("chat")) + repr(connection)
        os.kill(int((tmp_path / "pid").read_text()), signal.SIGKILL)
        await wait_until(lambda: _dead(tmp_path))
        await runner.run(call("local__search", '{"query": "x"}'), CONTEXT)
    assert TOKEN not in offered
    assert TOKEN not in caplog.text
    assert TOKEN not in repr(stdio_config(tmp_path))


async def test_manager_from_settings_runs_two_servers_side_by_side(
    tmp_path: Path, http_server: HttpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    servers = {
        "a": {
            "command": sys.executable,
            "args": list(SERVER),
            "cwd": str(ROOT),
            "confirm": ["boom"],
        },
        "b": {"url": http_server.url, "headers": {"Authorization": f"Bearer {TOKEN}"}},
    }
    monkeypatch.setenv("MCP_SERVERS", json.dumps(servers))
    registry = ToolRegistry()
    manager = McpManager.from_settings(
        registry, Settings(telegram_bot_token="123:abc", _env_file=None)
    )
    await manager.start()
    try:
        assert manager.states() == {"a": "ready", "b": "ready"}
        names = [s.name for s in registry.specs()]
        assert names == [f"a__{n}" for n in NAMES] + [f"b__{n}" for n in NAMES]
        confirm = {s.name for s in registry.specs() if s.needs_confirmation}
        assert confirm == {"a__boom"}
        runner = ToolRunner(registry, timeout=20, max_result_bytes=1_000)
        a, b = await runner.run_all(
            [
                call("a__search", '{"query": "1", "limit": 1}', "x"),
                call("b__search", '{"query": "2", "limit": 1}', "y"),
            ],
            CONTEXT,
        )
        assert (a.content_text, b.content_text) == ("result 1 for 1", "result 1 for 2")
        declined = await runner.run(call("a__boom"), CONTEXT)
        assert declined.status == "declined"
    finally:
        await manager.close()
    assert manager.states() == {"a": "closed", "b": "closed"}


async def test_idle_pings_keep_a_live_session_and_notice_a_dead_server(tmp_path: Path) -> None:
    registry = ToolRegistry()
    connection = McpConnection(stdio_config(tmp_path), registry, connect_timeout=30, errlog=DEVNULL)
    connection.ping_interval = 0.05
    await connection.start()
    try:
        # Idle checks (a fresh tools/list) keep the session; none reconnects it.
        await wait_until(lambda: connection.pings >= 3)
        assert (connection.state, connection.connects) == ("ready", 1)
        os.kill(int((tmp_path / "pid").read_text()), signal.SIGKILL)
        await wait_until(lambda: connection.connects == 2 and connection.state == "ready")
        result = await ToolRunner(registry, timeout=20, max_result_bytes=100).run(
            call("local__search", '{"query": "p", "limit": 1}'), CONTEXT
        )
        assert result.content_text == "result 1 for p"  # no call had to fail first
    finally:
        await connection.close()
