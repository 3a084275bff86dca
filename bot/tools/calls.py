"""Tool calls the model streams, put back together from `bot.llm`'s `ToolCallDelta`s.

A finished call is a `bot.parts.ToolCallPart` (the raw arguments text the model wrote), so the
turn stores and replays exactly what came. Invalid JSON arguments are kept as they came and
reported per call by `argument_error`, so the model gets an error result for that call and
the others still run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.llm.types import ToolCallDelta
from bot.parts import ToolCallPart
from bot.tools.types import JSONObject


class InvalidToolArguments(ValueError):
    """The model's arguments for one call are not a JSON object."""


def decode_arguments(text: str) -> JSONObject:
    """Decode a call's arguments; the empty string means no arguments."""
    if not text.strip():
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InvalidToolArguments(f"arguments are not valid JSON ({exc})") from None
    if not isinstance(value, dict):
        raise InvalidToolArguments(f"arguments must be a JSON object, not {type(value).__name__}")
    decoded: JSONObject = value
    return decoded


def argument_error(call: ToolCallPart) -> str | None:
    """Why a call's arguments cannot be used, or None when they can."""
    try:
        decode_arguments(call.arguments)
    except InvalidToolArguments as exc:
        return str(exc)
    return None


def _merge_name(current: str, piece: str) -> str:
    """Names come whole (OpenAI), repeated (some servers) or, rarely, in pieces."""
    if not current or piece.startswith(current):
        return piece
    return current + piece


@dataclass(slots=True)
class _Partial:
    order: int
    position: int | None = None
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    announced: bool = False

    def finish(self, fallback_id: str) -> ToolCallPart:
        return ToolCallPart(self.id or fallback_id, self.name, "".join(self.arguments))


@dataclass(frozen=True, slots=True)
class CallStarted:
    """A call whose name just became known (for the live status line)."""

    index: int
    id: str
    name: str


class ToolCallAccumulator:
    """Collects the calls of one model step, in the order the model made them."""

    def __init__(self) -> None:
        self._calls: dict[str, _Partial] = {}
        self._last: str | None = None

    def __bool__(self) -> bool:
        return any(p.name for p in self._calls.values())

    def feed(self, deltas: Iterable[ToolCallDelta]) -> list[CallStarted]:
        """Feed one event's pieces; returns the calls whose name became known."""
        started: list[CallStarted] = []
        for delta in deltas:
            partial = self._partial(delta)
            if delta.call_id and not partial.id:
                partial.id = delta.call_id
            if delta.name:
                partial.name = _merge_name(partial.name, delta.name)
            if delta.whole:
                partial.arguments = [delta.arguments]
            elif delta.arguments:
                partial.arguments.append(delta.arguments)
            if partial.name and not partial.announced:
                partial.announced = True
                started.append(CallStarted(partial.order, partial.id, partial.name))
        return started

    def _key(self, delta: ToolCallDelta) -> str:
        if delta.item_id:
            return delta.item_id
        if delta.index is not None:
            return f"#{delta.index}"
        known = next(
            (k for k, p in self._calls.items() if delta.call_id and p.id == delta.call_id), None
        )
        if known is not None:
            return known
        if delta.call_id or self._last is None:  # a new id, without an index: a new call
            return f"#{len(self._calls)}"
        return self._last

    def _partial(self, delta: ToolCallDelta) -> _Partial:
        key = self._last = self._key(delta)
        partial = self._calls.get(key)
        if partial is None:
            partial = self._calls[key] = _Partial(order=len(self._calls))
        if delta.index is not None:
            partial.position = delta.index
        return partial

    def calls(self) -> list[ToolCallPart]:
        """The finished calls in the model's order; a call without an id gets ``call_<index>``."""
        ordered = sorted(
            (p for p in self._calls.values() if p.name),
            key=lambda p: (p.position if p.position is not None else p.order, p.order),
        )
        return [p.finish(f"call_{p.order if p.position is None else p.position}") for p in ordered]
