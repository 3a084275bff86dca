"""Run the model's tool calls: every failure becomes an error result, never a crashed turn.

An unknown name, arguments that are not a JSON object, a tool that raises, hangs past the
per-call timeout or answers with megabytes: each gives the model a short error (or a
truncated text) it can react to. Only cancellation (``/stop``) propagates.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.tools.calls import InvalidToolArguments, ToolCall
from bot.tools.registry import ToolRegistry, ToolSpec
from bot.tools.types import Attachment, ResultStatus, ToolContext, ToolOutput

logger = logging.getLogger(__name__)

TRUNCATION_NOTE = "\n[truncated: the tool returned {total} bytes, shown {shown}]"
ERROR_TEXT_LIMIT = 300

#: Asks the user (of the context's chat) whether a tool that needs confirmation may run;
#: True runs it. It bounds its own wait (the per-call timeout starts after it).
Confirm = Callable[[ToolCall, ToolSpec, ToolContext], Awaitable[bool]]


class ToolUnavailable(Exception):
    """The tool's backend (an MCP server) is down; the text says which, without secrets."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The answer to one call, as the model will read it."""

    call_id: str
    name: str
    content_text: str
    is_error: bool = False
    status: ResultStatus = "ok"
    attachments: tuple[Attachment, ...] = ()
    truncated: bool = False


def truncate_utf8(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` UTF-8 bytes (with a note), never mid-character."""
    raw = text.encode("utf-8", "replace")
    if len(raw) <= limit:
        return text, False
    note_room = len(TRUNCATION_NOTE.format(total=len(raw), shown=limit).encode())
    keep = max(0, limit - note_room)
    head = raw[:keep].decode("utf-8", "ignore")
    shown = len(head.encode())
    return head + TRUNCATION_NOTE.format(total=len(raw), shown=shown), True


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text[:ERROR_TEXT_LIMIT]


class ToolRunner:
    """Runs one call (or one step's calls concurrently) against a registry."""

    def __init__(
        self,
        registry: ToolRegistry,
        *,
        timeout: float,
        max_result_bytes: int,
        confirm: Confirm | None = None,
    ) -> None:
        self.registry = registry
        self.timeout = timeout
        self.max_result_bytes = max_result_bytes
        self.confirm = confirm

    async def run_all(
        self, calls: Sequence[ToolCall], context: ToolContext, *, seconds: float | None = None
    ) -> list[ToolResult]:
        """Run a step's calls concurrently; the results come back in the calls' order."""
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(self.run(c, context, seconds=seconds)) for c in calls]
        return [task.result() for task in tasks]

    async def run(
        self, call: ToolCall, context: ToolContext, *, seconds: float | None = None
    ) -> ToolResult:
        """Run one call; never raises except `asyncio.CancelledError`."""
        tool = self.registry.get(call.name)
        if tool is None:
            offered = ", ".join(s.name for s in self.registry.specs()) or "none"
            text = f"Error: unknown tool {call.name[:64]!r}. Available tools: {offered}."
            return self._error(call, "unknown_tool", text)
        try:
            arguments = call.arguments()
        except InvalidToolArguments as exc:
            text = f"Error: invalid arguments for {call.name}: {exc}. Send a JSON object."
            return self._error(call, "bad_arguments", text)
        if tool.spec.needs_confirmation and not await self._confirmed(call, tool.spec, context):
            return self._error(call, "declined", "The user declined to run this tool.")
        limit = seconds if seconds is not None else self.timeout
        try:
            async with asyncio.timeout(limit):
                output = await tool.handler(arguments, context)
        except TimeoutError:
            logger.warning("tool %s timed out after %.1fs", call.name, limit)
            return self._error(call, "timeout", f"Error: the tool timed out after {limit:g} s.")
        except ToolUnavailable as exc:
            logger.warning("tool %s unavailable: %s", call.name, exc)
            return self._error(call, "unavailable", f"Error: {_short(exc)}")
        except Exception as exc:  # boundary: any tool failure is the model's to handle
            logger.warning("tool %s failed: %s", call.name, type(exc).__name__, exc_info=exc)
            text = f"Error: the tool failed: {type(exc).__name__}: {_short(exc)}"
            return self._error(call, "failed", text)
        return self._result(call, output)

    async def _confirmed(self, call: ToolCall, spec: ToolSpec, context: ToolContext) -> bool:
        if self.confirm is None:
            return False
        return await self.confirm(call, spec, context)

    def _result(self, call: ToolCall, output: ToolOutput) -> ToolResult:
        text, truncated = truncate_utf8(output.text, self.max_result_bytes)
        status: ResultStatus = "tool_error" if output.is_error else "ok"
        return ToolResult(
            call.id, call.name, text, output.is_error, status, output.attachments, truncated
        )

    def _error(self, call: ToolCall, status: ResultStatus, text: str) -> ToolResult:
        return ToolResult(call.id, call.name, text, True, status)
