"""The model step of a turn: ask the model, show the stream as it comes, keep it in bounds.

A context-length error before any text is retried once with a harder-trimmed prompt (and the
calibration learns from it). /stop cancels the stream through `TurnControl`; reaching a bound
cancels it from inside, which closes the HTTP response.

With tools on offer, a step that ends with tool calls runs them (`bot.tools.ToolLoop`: step
limit, deadline, per-call failures as error results), adds the step's text, the calls and
their results to the reply's parts, and asks the model again with them, until an answer comes
without calls. The sink sees one status per call meanwhile (`ToolActivity`); /stop cancels a
running call like the stream, and the calls it cut short get a "stopped" result.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from typing import Any

from bot.config import Settings
from bot.conversation import Stored
from bot.errors import ContextLengthError, LLMError
from bot.llm.backends import ModelClient
from bot.llm.reasoning import ThinkSplitter
from bot.llm.tokens import TokenCounter
from bot.llm.types import ChatMessage, ChatRequest, StreamEvent, Usage
from bot.notices import Code, Notice
from bot.parts import Part, TextPart
from bot.prompt.calibration import RETRY_MARGIN, Calibration
from bot.prompt.fit import MessageTooLong, Prompt
from bot.prompt.recall import Recall
from bot.reply_bounds import MESSAGE_CHARS, Bound, ReplyBounds, cut
from bot.reply_saves import ReplySaver
from bot.reply_sink import Progress, ReplySink, ShowsMessages, ToolActivity
from bot.tools.calls import ToolCallAccumulator
from bot.tools.loop import StepOutcome, ToolLoop, ToolStatus, stopped_results
from bot.tools.types import Attachment
from bot.values import Role

logger = logging.getLogger(__name__)

MEASURE_MARGIN = 256  # characters: the notice, and rendering that is a little longer
BOUND_CODES = {
    Bound.LENGTH: Code.LENGTH_BOUND,
    Bound.MESSAGES: Code.MESSAGES_BOUND,
    Bound.TIME: Code.TIME_BOUND,
}


class TurnControl:
    """Lets another handler stop a running turn's model stream (/stop)."""

    def __init__(self) -> None:
        self.stopped = False
        self._stream: asyncio.Task[Any] | None = None

    def attach(self, stream: asyncio.Task[Any]) -> None:
        """The task /stop cancels now: the model stream, or a step's tool calls."""
        self._stream = stream
        if self.stopped:
            stream.cancel()

    def stop(self) -> None:
        self.stopped = True
        if self._stream is not None:
            self._stream.cancel()


@dataclass(slots=True)
class StreamedReply:
    """The assistant reply being streamed, and what is known about it so far."""

    message_id: int
    chat_id: int
    user_id: int
    prompt: Prompt
    model: str
    counter: TokenCounter
    text: str = ""
    tokens: int = 0  # of the text as stored
    usage: Usage | None = None
    finish: str | None = None
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None
    bounds: ReplyBounds = field(default_factory=lambda: ReplyBounds(2**62, 2**62, 1e9))
    bound: Bound | None = None  # the bound that stopped the reply, if one did
    shown_chars: int = 0  # how much of the text was shown
    saver: ReplySaver | None = None
    thinking: ThinkSplitter = field(default_factory=ThinkSplitter)
    # Tool use: the earlier steps' text, calls and results; this step's calls as they stream.
    parts: list[Part] = field(default_factory=list)
    calls: ToolCallAccumulator = field(default_factory=ToolCallAccumulator)
    tools: dict[str, ToolStatus] = field(default_factory=dict)  # by call id, for the live view
    attachments: list[Attachment] = field(default_factory=list)
    spent: Usage | None = None  # the usage of the earlier steps
    tool_seconds: float = 0.0  # spent running tools (not the stream's time bound's)

    def shown_reasoning(self, show: bool) -> str:
        return self.thinking.reasoning if show else ""

    def messages(self) -> tuple[ChatMessage, ...]:
        """The prompt, and the reply's tool exchange so far for the next step."""
        if not self.parts:
            return self.prompt.messages
        return (*self.prompt.messages, ChatMessage(Role.ASSISTANT, tuple(self.parts)))

    def total_usage(self) -> Usage | None:
        """What every step used, as the server reported it (None if it never did)."""
        if self.usage is None or self.spent is None:
            return self.usage or self.spent
        return Usage(
            self.spent.prompt_tokens + self.usage.prompt_tokens,
            self.spent.completion_tokens + self.usage.completion_tokens,
        )

    def next_step(self, outcome: StepOutcome) -> None:
        """Keep this step (its text, then the calls and results) and start the next one."""
        if self.text.strip():
            self.parts.append(TextPart(self.text))
        self.parts += outcome.parts
        self.attachments += [a for result in outcome.results for a in result.attachments]
        self.spent, self.usage = self.total_usage(), None
        self.text, self.shown_chars, self.finish = "", 0, None
        self.thinking = ThinkSplitter()
        self.calls = ToolCallAccumulator()


class ModelStep:
    """Streams one reply from the model into a sink."""

    def __init__(
        self, settings: Settings, client: ModelClient, recall: Recall, calibration: Calibration
    ) -> None:
        self._settings = settings
        self._client = client
        self._recall = recall
        self._calibration = calibration

    async def run(
        self,
        stored: Stored,
        reply: StreamedReply,
        request: ChatRequest,
        sink: ReplySink,
        control: TurnControl,
        tools: ToolLoop | None = None,
    ) -> LLMError | None:
        """Stream the reply, running its tool calls between steps when `tools` is given; the
        error that ended it early, if one did. Raises CancelledError only when the turn itself
        is cancelled (shutdown), not on /stop."""
        while True:
            error = await self._stream(stored, reply, request, sink, control)
            calls = reply.calls.calls()
            if error is not None or tools is None or not calls or control.stopped:
                return error
            if reply.bound is not None or tools.stopped:  # calls past the limit, once answered
                return None
            await self._run_tools(reply, tools, sink, control)
            if control.stopped:
                return None
            offered = request.tools if tools.tools_allowed else ()
            request = replace(request, messages=reply.messages(), tools=offered)

    async def _run_tools(
        self, reply: StreamedReply, tools: ToolLoop, sink: ReplySink, control: TurnControl
    ) -> None:
        """Run the step's calls, showing a status per call; /stop answers them "stopped"."""
        calls = reply.calls.calls()
        details = self._settings.show_reasoning

        async def on_status(status: ToolStatus) -> None:
            reply.tools[status.call_id] = status
            sink.show(ToolActivity(tuple(reply.tools.values()), details))

        tools.on_status = on_status
        started = time.monotonic()
        task = asyncio.create_task(tools.step(calls))
        control.attach(task)
        try:
            outcome = await task
        except asyncio.CancelledError:
            if _being_cancelled():  # shutdown, not /stop
                raise
            outcome = StepOutcome(tuple(calls), stopped_results(calls))
        finally:
            reply.tool_seconds += time.monotonic() - started
        reply.next_step(outcome)

    async def _stream(
        self,
        stored: Stored,
        reply: StreamedReply,
        request: ChatRequest,
        sink: ReplySink,
        control: TurnControl,
    ) -> LLMError | None:
        """One model step; a context-length error before any text is retried once."""
        for attempt in (1, 2):
            stream = asyncio.create_task(self._consume(request, reply, sink))
            control.attach(stream)
            try:
                await stream
            except ContextLengthError as exc:
                self._calibration.learn_from_error(reply.model, reply.prompt.tokens, str(exc))
                if attempt == 2 or reply.text or control.stopped:
                    logger.warning("chat %s: prompt still too long: %s", stored.chat.id, exc)
                    return exc
                logger.info("chat %s: context length exceeded; trimming harder", stored.chat.id)
                try:
                    reply.prompt = await self._recall.prompt(
                        stored.conversation_id,
                        stored.config,
                        stored.item,
                        reply.counter,
                        shrink=RETRY_MARGIN,
                    )
                except MessageTooLong:
                    return exc
                request = replace(request, messages=reply.messages())
                continue
            except LLMError as exc:
                logger.warning("model stream failed in chat %s: %s", stored.chat.id, exc)
                return exc
            except asyncio.CancelledError:
                if _being_cancelled():  # the turn itself is cancelled (shutdown), not /stop
                    raise
            return None
        return None

    async def _consume(self, request: ChatRequest, reply: StreamedReply, sink: ReplySink) -> None:
        """Show the stream as it comes; stop it (closing the response) at a bound."""
        bounds = reply.bounds
        loop = asyncio.get_running_loop()
        streamed = time.monotonic() - reply.started - reply.tool_seconds
        deadline = loop.time() + bounds.seconds - streamed
        events = self._client.stream(request)
        try:
            # Reaching a bound cancels the stream from inside (the scope expires at once): the
            # cancellation runs through every layer of the client and closes the response.
            async with asyncio.timeout_at(deadline) as scope:
                await self._show_events(events, reply, sink, scope)
        except TimeoutError:
            if reply.bound is None:
                if loop.time() < deadline:
                    raise  # not the time bound's
                reply.bound = Bound.TIME
            logger.warning(
                "chat %s: reply stopped at the %s bound", reply.chat_id, reply.bound.value
            )
        finally:
            await _close(events)
        if reply.bound is None:
            reply.thinking.finish()
            reply.text = bound_text(reply, sink, reply.thinking.answer, last=True)

    async def _show_events(
        self,
        events: AsyncIterator[StreamEvent],
        reply: StreamedReply,
        sink: ReplySink,
        scope: asyncio.Timeout,
    ) -> None:
        show = self._settings.show_reasoning
        async for event in events:
            if reply.bound is not None:
                continue  # the scope is cancelling the stream
            if event.tool_calls:
                reply.calls.feed(event.tool_calls)
            if event.reasoning:
                reply.thinking.add_reasoning(event.reasoning)
            if event.text:
                reply.thinking.feed(event.text)
            if event.text or (show and event.reasoning):
                reply.first_token = reply.first_token or time.monotonic()
                reply.text = bound_text(reply, sink, reply.thinking.answer)
                sink.show(Progress(reply.text, reply.shown_reasoning(show)))
                reply.shown_chars = len(reply.text)
                if reply.bound is not None:
                    scope.reschedule(asyncio.get_running_loop().time())
                    continue
            reply.usage = event.usage or reply.usage
            reply.finish = event.finish_reason or reply.finish


def bound_text(reply: StreamedReply, sink: ReplySink, text: str, *, last: bool = False) -> str:
    """`text` within the reply's bounds; sets `reply.bound` when it had to be cut. Text
    already shown is never taken back."""
    bounds, shown = reply.bounds, reply.shown_chars
    if len(text) > bounds.chars:
        text = cut(text, bounds.chars, keep=shown)
        reply.bound = Bound.LENGTH
    # n messages hold at least (n - 1) × MESSAGE_CHARS: shorter texts need no measuring.
    due = last or len(text) + MEASURE_MARGIN >= bounds.messages * MESSAGE_CHARS
    if not isinstance(sink, ShowsMessages) or not due:
        return text
    notice = Notice(Code.MESSAGES_BOUND)
    if sink.messages_for(text, notice) <= bounds.messages:
        return text
    low, high = shown, len(text)  # the longest cut that fits, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        if sink.messages_for(cut(text, middle, keep=shown), notice) <= bounds.messages:
            low = middle
        else:
            high = middle - 1
    reply.bound = Bound.MESSAGES
    return cut(text, low, keep=shown)


async def _close(events: AsyncIterator[StreamEvent]) -> None:
    """Close a model stream left early (a bound): its HTTP response goes with it."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
