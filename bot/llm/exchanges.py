"""A prompt's messages as API turns, with every tool call answered exactly once.

A stored message's parts are in the order they happened: a reply that used tools holds text,
calls, their results, more calls, ..., and the answer. Each run of content and calls closed by
results is one `Segment` (an assistant message with `tool_calls`, then one `tool` message
per result, in chat/completions terms); results may also sit in a message of their own (role
``tool``) right after the message with the calls.

OpenAI rejects a tool result that answers no call right before it, and a call left without
an answer before the next message. `paired` makes any history valid: a call whose result was
lost (a crash mid-step) gets `LOST_RESULT`, a result whose call is gone is dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.llm.types import ChatMessage
from bot.parts import Part, ToolCallPart, ToolResultPart

LOST_RESULT = "Error: no result was recorded for this call (the turn was interrupted)."


@dataclass(slots=True)
class Segment:
    """One API turn: content (a plain string, or parts), calls, and the calls' results."""

    role: str
    content: str | tuple[Part, ...] = ()
    calls: list[ToolCallPart] = field(default_factory=list)
    results: list[ToolResultPart] = field(default_factory=list)


def _split(role: str, parts: tuple[Part, ...]) -> list[Segment]:
    """A message's parts cut into segments: results close the run of calls before them."""
    found: list[Segment] = []
    rest: list[Part] = []
    current = Segment(role)
    for part in parts:
        if isinstance(part, ToolResultPart):
            current.results.append(part)
            continue
        if current.results:  # a result closed the segment: this part opens the next
            current.content = tuple(rest)
            found.append(current)
            current, rest = Segment(role), []
        if isinstance(part, ToolCallPart):
            current.calls.append(part)
        else:
            rest.append(part)
    current.content = tuple(rest)
    if current.content or current.calls or current.results:
        found.append(current)
    return found


def segments(messages: Iterable[ChatMessage]) -> list[Segment]:
    """The messages as segments, in order, before pairing."""
    found: list[Segment] = []
    for message in messages:
        if isinstance(message.content, str):
            found.append(Segment(message.role, message.content))
        else:
            found += _split(message.role, message.content)
    return found


def paired(messages: Iterable[ChatMessage]) -> list[Segment]:
    """Segments in which each call is answered once, right after it, in the calls' order."""
    out: list[Segment] = []
    pending: Segment | None = None  # the last segment with calls, still taking results
    answers: dict[str, ToolResultPart] = {}

    def close() -> None:
        if pending is not None:
            pending.results = [
                answers.get(c.call_id) or ToolResultPart(c.call_id, LOST_RESULT, c.name, True)
                for c in pending.calls
            ]

    for segment in segments(messages):
        only_results = not segment.calls and not segment.content
        if pending is not None and only_results:  # results in a message of their own
            for result in segment.results:
                answers.setdefault(result.call_id, result)
            continue
        close()
        pending, answers = None, {}
        if segment.calls:
            ids = {c.call_id for c in segment.calls}
            answers = {r.call_id: r for r in reversed(segment.results) if r.call_id in ids}
            pending = segment
        else:
            segment.results = []  # answers to no call right before them
            if not segment.content:
                continue
        out.append(segment)
    close()
    return out
