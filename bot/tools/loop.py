"""The model → tools → model loop of one turn, bounded by a step limit and a deadline.

The turn's model step streams one answer; when it ends with tool calls the turn hands them
to `ToolLoop.step`, appends the returned messages (API-shaped) to the request and asks the
model again, until an answer comes without calls. Past the step limit or the deadline the
calls are answered with a "limit reached" error result (the request stays valid: every call
is answered) and `tools_allowed` turns False, so the next request carries no tools and the
model has to answer in words. Cancellation (``/stop``) propagates from any point.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot.tools.calls import ToolCall
from bot.tools.registry import ApiShape
from bot.tools.runner import ToolResult, ToolRunner
from bot.tools.types import JSON, JSONObject, ToolContext

LIMIT_TEXT = "Error: the tool step limit of this turn was reached; answer with what you have."
DEADLINE_TEXT = "Error: the time for tools in this turn ran out; answer with what you have."
PREVIEW_CHARS = 60
EXCERPT_CHARS = 300

Phase = Literal["running", "done", "failed"]


@dataclass(frozen=True, slots=True)
class ToolStatus:
    """One call's state for the live view (the frontend words it: "🔧 search: «…»…")."""

    call_id: str
    name: str
    phase: Phase
    preview: str  # the main argument, shortened
    result: ToolResult | None = None
    arguments: str = ""  # the raw arguments, shortened (SHOW_REASONING's collapsed view)

    def result_excerpt(self, limit: int = EXCERPT_CHARS) -> str:
        """The start of the result text (SHOW_REASONING's collapsed view)."""
        text = self.result.content_text if self.result is not None else ""
        return text if len(text) <= limit else text[: limit - 1] + "…"


OnStatus = Callable[[ToolStatus], Awaitable[None]]


def argument_preview(call: ToolCall, limit: int = PREVIEW_CHARS) -> str:
    """The first string argument (a query, a URL), shortened; "" when there is none."""
    try:
        arguments = call.arguments()
    except ValueError:
        return ""
    text = next((v for v in arguments.values() if isinstance(v, str) and v.strip()), "")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def chat_messages(
    text: str, calls: Sequence[ToolCall], results: Sequence[ToolResult]
) -> list[JSON]:
    """The assistant message with ``tool_calls`` and one ``tool`` message per call, in order."""
    tool_calls: list[JSON] = [
        {
            "id": c.id,
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments_json or "{}"},
        }
        for c in calls
    ]
    assistant: JSONObject = {"role": "assistant", "content": text or None, "tool_calls": tool_calls}
    answers: list[JSON] = [
        {"role": "tool", "tool_call_id": r.call_id, "content": r.content_text} for r in results
    ]
    return [assistant, *answers]


def responses_items(
    text: str, calls: Sequence[ToolCall], results: Sequence[ToolResult]
) -> list[JSON]:
    """Responses API input items: the text (if any), each ``function_call``, each output."""
    items: list[JSON] = []
    if text:
        items.append({"role": "assistant", "content": text})
    items += [
        {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": c.arguments_json}
        for c in calls
    ]
    items += [
        {"type": "function_call_output", "call_id": r.call_id, "output": r.content_text}
        for r in results
    ]
    return items


@dataclass(slots=True)
class StepOutcome:
    """What one step adds to the request, and the results (for storage and attachments)."""

    messages: list[JSON]
    results: list[ToolResult]
    stopped: bool = False  # the limit or deadline was hit: the next request has no tools


@dataclass
class ToolLoop:
    """One turn's tool rounds; make one per turn."""

    runner: ToolRunner
    shape: ApiShape
    context: ToolContext
    max_steps: int
    timeout: float  # seconds for the whole loop
    on_status: OnStatus | None = None
    steps: int = 0
    stopped: bool = False
    clock: Callable[[], float] = time.monotonic
    _deadline: float = field(init=False)

    def __post_init__(self) -> None:
        self._deadline = self.clock() + self.timeout

    @property
    def tools_allowed(self) -> bool:
        """Whether the next model request may offer tools."""
        return not self.stopped and self.steps < self.max_steps and self._remaining() > 0

    def _remaining(self) -> float:
        return self._deadline - self.clock()

    async def step(self, text: str, calls: Sequence[ToolCall]) -> StepOutcome:
        """Run a finished model step's calls; returns the messages to append."""
        remaining = self._remaining()
        if self.steps >= self.max_steps or remaining <= 0:
            self.stopped = True
            reason = LIMIT_TEXT if self.steps >= self.max_steps else DEADLINE_TEXT
            results = [ToolResult(c.id, c.name, reason, True, "step_limit") for c in calls]
            return StepOutcome(self._messages(text, calls, results), results, stopped=True)
        self.steps += 1
        await self._report(calls, "running", None)
        call_timeout = min(self.runner.timeout, remaining)
        results = await self.runner.run_all(calls, self.context, seconds=call_timeout)
        for call, result in zip(calls, results, strict=True):
            phase: Phase = "failed" if result.is_error else "done"
            await self._report([call], phase, result)
        return StepOutcome(self._messages(text, calls, results), results, stopped=False)

    async def _report(
        self, calls: Sequence[ToolCall], phase: Phase, result: ToolResult | None
    ) -> None:
        if self.on_status is None:
            return
        for call in calls:
            arguments = call.arguments_json[:EXCERPT_CHARS]
            status = ToolStatus(
                call.id, call.name, phase, argument_preview(call), result, arguments
            )
            await self.on_status(status)

    def _messages(
        self, text: str, calls: Sequence[ToolCall], results: Sequence[ToolResult]
    ) -> list[JSON]:
        if self.shape == "chat":
            return chat_messages(text, calls, results)
        return responses_items(text, calls, results)
