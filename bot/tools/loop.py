"""The model → tools → model loop of one turn, bounded by a step limit and a deadline.

The turn's model step streams one answer; when it ends with tool calls the turn hands them
to `ToolLoop.step`, appends the returned parts (the calls, then their results: `bot.parts`,
which `bot.llm.bodies` renders in each API's shape) to the reply and asks the model again,
until an answer comes without calls. Past the step limit or the deadline the
calls are answered with a "limit reached" error result (the request stays valid: every call
is answered) and `tools_allowed` turns False, so the next request carries no tools and the
model has to answer in words. Cancellation (``/stop``) propagates from any point.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from bot.parts import Part, ToolCallPart
from bot.tools.calls import decode_arguments
from bot.tools.runner import ToolResult, ToolRunner
from bot.tools.types import ToolContext

LIMIT_TEXT = "Error: the tool step limit of this turn was reached; answer with what you have."
DEADLINE_TEXT = "Error: the time for tools in this turn ran out; answer with what you have."
STOPPED_TEXT = "Error: the user stopped this call before it finished."
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


def argument_preview(call: ToolCallPart, limit: int = PREVIEW_CHARS) -> str:
    """The first string argument (a query, a URL), shortened; "" when there is none."""
    try:
        arguments = decode_arguments(call.arguments)
    except ValueError:
        return ""
    text = next((v for v in arguments.values() if isinstance(v, str) and v.strip()), "")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(slots=True)
class StepOutcome:
    """One step's calls and their results (in the calls' order), with what the reply adds."""

    calls: tuple[ToolCallPart, ...]
    results: list[ToolResult]
    stopped: bool = False  # the limit or deadline was hit: the next request has no tools

    @property
    def parts(self) -> tuple[Part, ...]:
        """What the reply's stored content gains: the calls, then one result each."""
        return (*self.calls, *(r.part for r in self.results))


def stopped_results(calls: Sequence[ToolCallPart]) -> list[ToolResult]:
    """Results for calls that /stop cut short, so the stored exchange stays valid."""
    return [ToolResult.error(c, "stopped", STOPPED_TEXT) for c in calls]


@dataclass
class ToolLoop:
    """One turn's tool rounds; make one per turn."""

    runner: ToolRunner
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

    async def step(self, calls: Sequence[ToolCallPart]) -> StepOutcome:
        """Run a finished model step's calls; returns them with their results."""
        remaining = self._remaining()
        if self.steps >= self.max_steps or remaining <= 0:
            self.stopped = True
            reason = LIMIT_TEXT if self.steps >= self.max_steps else DEADLINE_TEXT
            results = [ToolResult.error(c, "step_limit", reason) for c in calls]
            await self._report(calls, "failed", None)
            return StepOutcome(tuple(calls), results, stopped=True)
        self.steps += 1
        await self._report(calls, "running", None)
        results = await self.runner.run_all(
            calls, self.context, within=remaining, on_done=self._ended
        )
        return StepOutcome(tuple(calls), results, stopped=False)

    async def _ended(self, call: ToolCallPart, result: ToolResult) -> None:
        await self._report([call], "failed" if result.is_error else "done", result)

    async def _report(
        self, calls: Sequence[ToolCallPart], phase: Phase, result: ToolResult | None
    ) -> None:
        if self.on_status is None:
            return
        for call in calls:
            arguments = call.arguments[:EXCERPT_CHARS]
            status = ToolStatus(
                call.call_id, call.name, phase, argument_preview(call), result, arguments
            )
            await self.on_status(status)
