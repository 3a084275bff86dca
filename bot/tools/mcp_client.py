"""Operator-configured MCP servers, through the official SDK's `mcp.Client`.

Each server gets one supervisor task that opens the session (a stdio subprocess or a
streamable HTTP connection), lists its tools into the registry as ``server__tool`` and holds
the session until it breaks; then it reconnects with a growing pause. The SDK's transports
run anyio task groups, so the session is entered and left in that one task; calls from the
turn's tasks go through the held `mcp.Client`.

A call to a server that is down fails fast with `ToolUnavailable` (the model gets an error
result; the tools stay listed from the cache). Env values and headers are secrets: they are
passed to the transport only, and any text that could carry one (an exception message) is
redacted before it is logged or returned.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from typing import Literal, TextIO
from urllib.parse import urlsplit

import mcp_types
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.caching import CacheMode
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

from bot.config import Settings
from bot.tool_config import McpServerConfig
from bot.tools.registry import RegisteredTool, ToolRegistry, ToolSpec, namespaced, object_schema
from bot.tools.runner import ToolUnavailable
from bot.tools.types import JSONObject, ToolContext, ToolOutput

logger = logging.getLogger(__name__)

FIRST_RETRY = 0.5
MAX_RETRY = 30.0
LIST_PAGES = 20
PING_INTERVAL = 30.0  # seconds between liveness checks of an idle session
State = Literal["connecting", "ready", "down", "closed"]


class McpConnection:
    """One MCP server: its session, its cached tool listing, calls with reconnection."""

    def __init__(
        self,
        config: McpServerConfig,
        registry: ToolRegistry,
        *,
        connect_timeout: float,
        errlog: TextIO | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.connect_timeout = connect_timeout
        self.state: State = "connecting"
        self.connects = 0  # successful sessions so far (tests watch reconnection)
        self.pings = 0  # idle liveness checks answered
        self._errlog = errlog or sys.stderr
        self._client: Client | None = None
        self._ready = asyncio.Event()
        self._broken = asyncio.Event()
        self._settled = asyncio.Event()  # the first attempt ended, well or not
        self._closing = False
        self._inflight = 0  # calls under way (an idle session is checked, a busy one not)
        self.ping_interval = PING_INTERVAL
        self._task: asyncio.Task[None] | None = None
        self._secrets = self._secret_values()

    def __repr__(self) -> str:
        return f"McpConnection(name={self.config.name!r}, transport={self.config.transport!r})"

    @property
    def source(self) -> str:
        return f"mcp:{self.config.name}"

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the supervisor and wait (at most the connect timeout) for the first session."""
        if self._task is None:
            self._task = asyncio.create_task(self._supervise(), name=f"mcp:{self.config.name}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.connect_timeout):
                await self._settled.wait()

    async def close(self) -> None:
        """End the session (stops a stdio server) and the supervisor."""
        self._closing = True
        self._broken.set()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.state = "closed"

    async def _supervise(self) -> None:
        pause = FIRST_RETRY
        while not self._closing:
            try:
                await self._session()
                pause = FIRST_RETRY
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # boundary: any transport failure means "reconnect"
                logger.warning(
                    "MCP server %s: connection failed: %s", self.config.name, self.describe(exc)
                )
            finally:
                self._client = None
                self._ready.clear()
                self._settled.set()
            if self._closing:
                return
            self.state = "down"
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_RETRY)

    async def _session(self) -> None:
        async with AsyncExitStack() as stack:
            async with asyncio.timeout(self.connect_timeout):
                client = await stack.enter_async_context(await self._client_for(stack))
                tools = await self._list(client)
            self._broken.clear()
            self._publish(tools)
            self._client = client
            self.state = "ready"
            self.connects += 1
            self._ready.set()
            self._settled.set()
            logger.info("MCP server %s: connected, %d tools", self.config.name, len(tools))
            await self._watch(client)

    async def _watch(self, client: Client) -> None:
        """Hold the session until a call finds it broken or an idle check goes unanswered.

        The check lists the tools afresh (``ping`` is gone from the 2026-07-28 protocol),
        which also picks up tools the server added or changed. No check runs while calls
        are under way: their failure tells.
        """
        while not self._broken.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.ping_interval):
                    await self._broken.wait()
                    return
            if self._inflight:
                continue
            async with asyncio.timeout(self.connect_timeout):
                tools = await self._list(client, cache_mode="refresh")
            self._publish(tools)
            self.pings += 1

    async def _client_for(self, stack: AsyncExitStack) -> Client:
        config = self.config
        if config.command is not None:
            params = StdioServerParameters(
                command=config.command,
                args=list(config.args),
                env={k: v.get_secret_value() for k, v in config.env.items()} or None,
                cwd=config.cwd,
            )
            return Client(stdio_client(params, errlog=self._errlog))
        assert config.url is not None  # the config validator guarantees one transport
        headers = {k: v.get_secret_value() for k, v in config.headers.items()}
        http = await stack.enter_async_context(create_mcp_http_client(headers=headers))
        return Client(streamable_http_client(config.url, http_client=http))

    async def _list(self, client: Client, cache_mode: CacheMode = "use") -> list[mcp_types.Tool]:
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(LIST_PAGES):
            page = await client.list_tools(cursor=cursor, cache_mode=cache_mode)
            tools += page.tools
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    def _publish(self, tools: Iterable[mcp_types.Tool]) -> None:
        entries: dict[str, RegisteredTool] = {}
        for tool in tools:
            name = namespaced(self.config.name, tool.name)
            if name in entries:
                logger.warning(
                    "MCP server %s: tool %r skipped (name clash)", self.config.name, name
                )
                continue
            spec = ToolSpec(
                name=name,
                description=(tool.description or tool.title or tool.name).strip(),
                parameters=object_schema(tool.input_schema),
                needs_confirmation=self.config.needs_confirmation(tool.name),
                timeout=self.config.timeout,
                source=self.source,
                remote_name=tool.name,
            )
            entries[name] = RegisteredTool(spec, McpTool(self, tool.name))
        self.registry.replace_source(self.source, entries.values())

    # --- calls ----------------------------------------------------------------------------------

    async def call(self, tool: str, arguments: JSONObject) -> ToolOutput:
        """Call ``tool``; `ToolUnavailable` when the server is down or the session breaks."""
        client = self._client
        if client is None or self.state != "ready":
            raise ToolUnavailable(f"the MCP server {self.config.name!r} is unavailable right now")
        self._inflight += 1
        try:
            result = await client.call_tool(tool, arguments)
        except MCPError as exc:
            if exc.code == mcp_types.CONNECTION_CLOSED:
                self._mark_broken()
                raise ToolUnavailable(
                    f"the MCP server {self.config.name!r} closed the connection"
                ) from None
            return ToolOutput(f"Error from the MCP server: {self.redact(exc.message)}", True)
        except Exception as exc:  # boundary: a transport failure; a new session is cheap
            self._mark_broken()
            logger.warning("MCP server %s: call failed: %s", self.config.name, self.describe(exc))
            raise ToolUnavailable(
                f"the MCP server {self.config.name!r} is unreachable ({type(exc).__name__})"
            ) from None
        finally:
            self._inflight -= 1
        return result_output(result)

    def _mark_broken(self) -> None:
        if self.state == "ready":
            self.state = "down"
        self._client = None
        self._broken.set()

    # --- secrets --------------------------------------------------------------------------------

    def _secret_values(self) -> list[str]:
        values = [
            v.get_secret_value() for v in (*self.config.env.values(), *self.config.headers.values())
        ]
        if self.config.url:
            parts = urlsplit(self.config.url)
            values += [p for p in (parts.query, parts.password or "") if p]
            values += [part.split("=", 1)[-1] for part in parts.query.split("&")]
        # Longest first, so "Bearer abc" is masked whole before "abc".
        return sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)

    def describe(self, exc: BaseException) -> str:
        """The innermost error of ``exc`` (task groups wrap them), redacted, for the logs."""
        while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
            exc = exc.exceptions[0]
        return self.redact(f"{type(exc).__name__}: {exc}"[:300])

    def redact(self, text: str) -> str:
        """``text`` with every configured secret value replaced by ``***``."""
        for value in self._secrets:
            text = text.replace(value, "***")
        return text


class McpTool:
    """The handler of one MCP tool in the registry."""

    def __init__(self, connection: McpConnection, remote_name: str) -> None:
        self.connection = connection
        self.remote_name = remote_name

    async def __call__(self, arguments: JSONObject, context: ToolContext) -> ToolOutput:
        return await self.connection.call(self.remote_name, arguments)


def result_output(result: mcp_types.CallToolResult) -> ToolOutput:
    """An MCP call result as text for the model (non-text blocks named, not inlined)."""
    parts: list[str] = []
    for block in result.content:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[resource: {block.uri}]")
        else:
            parts.append(f"[{block.type} content not shown]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return ToolOutput("\n".join(parts), is_error=bool(result.is_error))


class McpManager:
    """Every configured server: started together at start-up, closed together."""

    def __init__(
        self,
        registry: ToolRegistry,
        servers: Sequence[McpServerConfig],
        *,
        connect_timeout: float,
        errlog: TextIO | None = None,
    ) -> None:
        # The SDK's HTTP client logs every request URL at INFO (a URL may carry a token).
        logging.getLogger("httpx2").setLevel(logging.WARNING)
        self.connections = {
            s.name: McpConnection(s, registry, connect_timeout=connect_timeout, errlog=errlog)
            for s in servers
        }

    @classmethod
    def from_settings(cls, registry: ToolRegistry, settings: Settings) -> McpManager:
        return cls(registry, settings.mcp_servers, connect_timeout=settings.mcp_connect_timeout)

    async def start(self) -> None:
        """Connect to every server at once; one that fails keeps retrying in the background."""
        await asyncio.gather(*(c.start() for c in self.connections.values()))

    async def close(self) -> None:
        await asyncio.gather(*(c.close() for c in self.connections.values()))

    def states(self) -> dict[str, State]:
        return {name: c.state for name, c in self.connections.items()}


__all__ = ["McpConnection", "McpManager", "McpTool", "result_output"]
