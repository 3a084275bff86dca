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

from bot.parts import ToolCallPart, ToolResultPart
from bot.tools.calls import InvalidToolArguments, decode_arguments
from bot.tools.registry import ToolRegistry, ToolSpec
from bot.tools.types import Attachment, ResultStatus, ToolContext, ToolOutput

logger = logging.getLogger(__name__)

TRUNCATION_NOTE = "\n[truncated: the tool returned {total} bytes, shown {shown}]"
ERROR_TEXT_LIMIT = 300

#: Asks the user (of the context's chat) whether a tool that needs confirmation may run;
#: True runs it. It bounds its own wait (the per-call timeout starts after it).
Confirm = Callable[[ToolCallPart, ToolSpec, ToolContext], Awaitable[bool]]


class ToolUnavailable(Exception):
    """The tool's backend (an MCP server) is down; the text says which, without secrets."""


@dataclass(frozen=True, slots=True)
class ToolResult:
    """The answer to one call: `part`, as the model reads it and the history keeps it, and
    what only this turn needs (why it ended, attachments to send)."""

    part: ToolResultPart
    status: ResultStatus = "ok"
    attachments: tuple[Attachment, ...] = ()
    truncated: bool = False

    @property
    def call_id(self) -> str:
        return self.part.call_id

    @property
    def name(self) -> str:
        return self.part.name

    @property
    def content_text(self) -> str:
        return self.part.text

    @property
    def is_error(self) -> bool:
        return self.part.is_error

    @classmethod
    def error(cls, call: ToolCallPart, status: ResultStatus, text: str) -> ToolResult:
        return cls(ToolResultPart(call.call_id, text, call.name, True), status)


#: Told of each call of a step as it ends (the live status line).
OnDone = Callable[[ToolCallPart, ToolResult], Awaitable[None]]


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
        disabled: frozenset[str] = frozenset(),
    ) -> None:
        self.registry = registry
        self.disabled = disabled  # the chat turned these off: calls to them are unknown
        self.timeout = timeout
        self.max_result_bytes = max_result_bytes
        self.confirm = confirm

    async def run_all(
        self,
        calls: Sequence[ToolCallPart],
        context: ToolContext,
        *,
        within: float | None = None,
        on_done: OnDone | None = None,
    ) -> list[ToolResult]:
        """Run a step's calls concurrently, none past `within` seconds, telling `on_done` of
        each as it ends; the results come back in the calls' order."""

        async def one(call: ToolCallPart) -> ToolResult:
            result = await self.run(call, context, within=within)
            if on_done is not None:
                await on_done(call, result)
            return result

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(c)) for c in calls]
        return [task.result() for task in tasks]

    async def run(
        self,
        call: ToolCallPart,
        context: ToolContext,
        *,
        seconds: float | None = None,
        within: float | None = None,
    ) -> ToolResult:
        """Run one call for `seconds` (default: the tool's own timeout, else the runner's),
        never past `within`; never raises except `asyncio.CancelledError`."""
        tool = None if call.name in self.disabled else self.registry.get(call.name)
        if tool is None:
            offered = ", ".join(s.name for s in self.registry.specs(self.disabled)) or "none"
            text = f"Error: unknown tool {call.name[:64]!r}. Available tools: {offered}."
            return self._error(call, "unknown_tool", text)
        try:
            arguments = decode_arguments(call.arguments)
        except InvalidToolArguments as exc:
            text = f"Error: invalid arguments for {call.name}: {exc}. Send a JSON object."
            return self._error(call, "bad_arguments", text)
        if tool.spec.needs_confirmation and not await self._confirmed(call, tool.spec, context):
            return self._error(call, "declined", "The user declined to run this tool.")
        limit = seconds if seconds is not None else tool.spec.timeout or self.timeout
        if within is not None:
            limit = min(limit, within)
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

    async def _confirmed(self, call: ToolCallPart, spec: ToolSpec, context: ToolContext) -> bool:
        if self.confirm is None:
            return False
        return await self.confirm(call, spec, context)

    def _result(self, call: ToolCallPart, output: ToolOutput) -> ToolResult:
        text, truncated = truncate_utf8(output.text, self.max_result_bytes)
        status: ResultStatus = "tool_error" if output.is_error else "ok"
        part = ToolResultPart(call.call_id, text, call.name, output.is_error)
        return ToolResult(part, status, output.attachments, truncated)

    def _error(self, call: ToolCallPart, status: ResultStatus, text: str) -> ToolResult:
        return ToolResult.error(call, status, text)
