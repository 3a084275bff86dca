"""Tool calls the model streams, put back together.

chat/completions sends ``delta.tool_calls[i] = {index, id?, type?, function: {name?,
arguments?}}``: the id and name come once, the arguments in fragments concatenated per
``index``; several indexes may interleave (parallel calls). The Responses API sends
``response.output_item.added`` with a ``function_call`` item, then
``response.function_call_arguments.delta`` / ``.done`` per ``item_id``, and
``response.output_item.done`` with the whole item.

Servers differ: some omit ``index`` (a new ``id`` then opens a new call), send the whole
arguments at once, send them as an object, or repeat the full name on every fragment.
Invalid JSON arguments are kept as they came and reported per call by `ToolCall.error`,
so the model gets an error result for that call and the others still run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.tools.types import JSONObject


class InvalidToolArguments(ValueError):
    """The model's arguments for one call are not a JSON object."""


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One finished call: ``arguments_json`` is the raw text the model produced."""

    id: str
    name: str
    arguments_json: str

    def arguments(self) -> JSONObject:
        """The decoded arguments (``{}`` for empty text); `InvalidToolArguments` otherwise."""
        return decode_arguments(self.arguments_json)

    @property
    def error(self) -> str | None:
        """Why the arguments cannot be used, or None when they can."""
        try:
            self.arguments()
        except InvalidToolArguments as exc:
            return str(exc)
        return None


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


def _text(value: Any) -> str:
    """A fragment as text: objects (some servers send them) re-encoded as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _merge_name(current: str, piece: str) -> str:
    """Names come whole (OpenAI), repeated (some servers) or, rarely, in pieces."""
    if not current or piece.startswith(current):
        return piece
    return current + piece


@dataclass(slots=True)
class _Partial:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)
    announced: bool = False

    def finish(self, fallback_id: str) -> ToolCall:
        return ToolCall(self.id or fallback_id, self.name, "".join(self.arguments))


@dataclass(frozen=True, slots=True)
class CallStarted:
    """A call whose name just became known (for the live status line)."""

    index: int
    id: str
    name: str


class ChatToolCallAccumulator:
    """Collects ``delta.tool_calls`` fragments of one chat/completions choice."""

    def __init__(self) -> None:
        self._calls: dict[int, _Partial] = {}
        self._last: int | None = None

    def __bool__(self) -> bool:
        return bool(self._calls)

    def feed_chunk(self, chunk: Mapping[str, Any]) -> list[CallStarted]:
        """Feed one decoded stream chunk (its first choice's delta)."""
        for choice in chunk.get("choices") or ():
            if isinstance(choice, Mapping) and choice.get("index", 0) == 0:
                delta = choice.get("delta") or choice.get("message")
                if isinstance(delta, Mapping):
                    return self.feed_delta(delta)
        return []

    def feed_delta(self, delta: Mapping[str, Any]) -> list[CallStarted]:
        """Feed one ``delta`` dict; returns the calls whose name became known."""
        started: list[CallStarted] = []
        for fragment in delta.get("tool_calls") or ():
            if isinstance(fragment, Mapping):
                event = self._feed_fragment(fragment)
                if event is not None:
                    started.append(event)
        return started

    def _index_of(self, fragment: Mapping[str, Any]) -> int:
        index = fragment.get("index")
        if isinstance(index, int) and not isinstance(index, bool):
            return index
        call_id = fragment.get("id")
        known = next((i for i, p in self._calls.items() if call_id and p.id == call_id), None)
        if known is not None:
            return known
        if call_id or self._last is None:
            return max(self._calls, default=-1) + 1
        return self._last

    def _feed_fragment(self, fragment: Mapping[str, Any]) -> CallStarted | None:
        index = self._index_of(fragment)
        self._last = index
        partial = self._calls.setdefault(index, _Partial())
        call_id = fragment.get("id")
        if isinstance(call_id, str) and call_id and not partial.id:
            partial.id = call_id
        function = fragment.get("function")
        if isinstance(function, Mapping):
            name = function.get("name")
            if isinstance(name, str) and name:
                partial.name = _merge_name(partial.name, name)
            piece = _text(function.get("arguments"))
            if piece:
                partial.arguments.append(piece)
        if partial.name and not partial.announced:
            partial.announced = True
            return CallStarted(index, partial.id, partial.name)
        return None

    def calls(self) -> list[ToolCall]:
        """The finished calls in index order; a call without an id gets ``call_<index>``."""
        return [self._calls[i].finish(f"call_{i}") for i in sorted(self._calls)]


@dataclass(slots=True)
class _ResponsesPartial(_Partial):
    output_index: int = 0
    done: bool = False


class ResponsesToolCallAccumulator:
    """Collects the ``function_call`` output items of one Responses API stream."""

    def __init__(self) -> None:
        self._items: dict[str, _ResponsesPartial] = {}

    def __bool__(self) -> bool:
        return bool(self._items)

    def feed(self, payload: Mapping[str, Any]) -> list[CallStarted]:
        """Feed one decoded event (its JSON carries ``type``); other events are ignored."""
        kind = payload.get("type")
        if kind in ("response.output_item.added", "response.output_item.done"):
            return self._item(payload, done=kind.endswith(".done"))
        if kind == "response.function_call_arguments.delta":
            partial = self._items.get(str(payload.get("item_id")))
            if partial is not None and not partial.done:
                partial.arguments.append(_text(payload.get("delta")))
        elif kind == "response.function_call_arguments.done":
            partial = self._items.get(str(payload.get("item_id")))
            if partial is not None and "arguments" in payload:
                partial.arguments = [_text(payload.get("arguments"))]
        elif kind in ("response.completed", "response.incomplete"):
            return self._final(payload.get("response"))
        return []

    def _item(self, payload: Mapping[str, Any], *, done: bool) -> list[CallStarted]:
        item = payload.get("item")
        if not isinstance(item, Mapping) or item.get("type") != "function_call":
            return []
        index = payload.get("output_index")
        return self._absorb(item, index if isinstance(index, int) else len(self._items), done)

    def _absorb(self, item: Mapping[str, Any], index: int, done: bool) -> list[CallStarted]:
        key = str(item.get("id") or item.get("call_id") or f"item_{index}")
        partial = self._items.get(key)
        if partial is None:
            partial = self._items[key] = _ResponsesPartial(output_index=index)
        partial.id = str(item.get("call_id") or partial.id)
        partial.name = str(item.get("name") or partial.name)
        arguments = item.get("arguments")
        if done or (arguments and not partial.arguments):
            if arguments is not None:
                partial.arguments = [_text(arguments)]
            partial.done = done
        if partial.name and not partial.announced:
            partial.announced = True
            return [CallStarted(index, partial.id, partial.name)]
        return []

    def _final(self, response: Any) -> list[CallStarted]:
        """``response.completed`` lists the output again: a fallback for skipped events."""
        if not isinstance(response, Mapping):
            return []
        started: list[CallStarted] = []
        for index, item in enumerate(response.get("output") or ()):
            if isinstance(item, Mapping) and item.get("type") == "function_call":
                known = any(p.id == item.get("call_id") for p in self._items.values())
                if not known:
                    started += self._absorb(item, index, done=True)
        return started

    def calls(self) -> list[ToolCall]:
        """The finished calls in output order."""
        ordered = sorted(self._items.values(), key=lambda p: p.output_index)
        return [p.finish(f"call_{p.output_index}") for p in ordered]
