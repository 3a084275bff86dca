"""A real MCP server (the SDK's `MCPServer`, FastMCP's 2.x name) for the tools tests.

Run over stdio: ``python -m tests.mcp_servers.tools_server``; over streamable HTTP on
127.0.0.1: ``python -m tests.mcp_servers.tools_server --http [--port N]``, which prints
``PORT <n>`` on stdout once it listens (port 0: a random one). ``MCP_TEST_PID_FILE``, when
set, receives the process id (so a test can kill the server); ``MCP_TEST_TOKEN`` is an env
secret the ``secret_check`` tool compares without ever returning it. Over HTTP every request
must carry ``Authorization: Bearer $MCP_TEST_TOKEN`` when that is set.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
from typing import Any

from mcp.server.mcpserver import MCPServer

server = MCPServer("testtools", instructions="Tools for the memorybot tests.")


@server.tool()
def search(query: str, limit: int = 3) -> str:
    """Search the test corpus and return matching lines."""
    return "\n".join(f"result {i + 1} for {query}" for i in range(limit))


@server.tool()
async def slow(seconds: float = 3600.0) -> str:
    """Sleep, then answer (a tool that hangs)."""
    await asyncio.sleep(seconds)
    return "woke up"


@server.tool()
def boom() -> str:
    """Always raises."""
    raise RuntimeError("boom: the tool broke")


@server.tool()
def huge(megabytes: int = 10) -> str:
    """Return a very long text."""
    return "x" * (megabytes * 1024 * 1024)


@server.tool()
def secret_check(expected_length: int) -> str:
    """Whether the server received its secret env value (the value is never returned)."""
    token = os.environ.get("MCP_TEST_TOKEN", "")
    return f"token present: {bool(token)}, length matches: {len(token) == expected_length}"


@server.tool(name="dotted.name")
def dotted(value: str = "") -> str:
    """A tool whose name the OpenAI name rule does not allow as it is."""
    return f"dotted {value}"


def _write_pid() -> None:
    path = os.environ.get("MCP_TEST_PID_FILE")
    if path:
        with open(path, "w") as handle:
            handle.write(str(os.getpid()))


class _BearerCheck:
    """ASGI middleware: 401 unless the bearer token matches (when one is configured)."""

    def __init__(self, app: Any, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = dict(scope.get("headers") or [])
            if headers.get(b"authorization") != self.expected:
                await send({"type": "http.response.start", "status": 401, "headers": []})
                await send({"type": "http.response.body", "body": b"unauthorized"})
                return
        await self.app(scope, receive, send)


async def _serve_http(port: int) -> None:
    import uvicorn

    app: Any = server.streamable_http_app(host="127.0.0.1")
    token = os.environ.get("MCP_TEST_TOKEN", "")
    if token:
        app = _BearerCheck(app, token)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    uv = uvicorn.Server(config)
    serving = asyncio.create_task(uv.serve(sockets=[sock]))  # announce the port once it accepts
    while not uv.started and not serving.done():  # noqa: ASYNC110 - uvicorn sets a flag
        await asyncio.sleep(0.01)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    await serving


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args()
    _write_pid()
    if options.http:
        asyncio.run(_serve_http(options.port))
    else:
        server.run("stdio")
    sys.exit(0)


if __name__ == "__main__":
    main()
