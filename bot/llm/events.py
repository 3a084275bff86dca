"""Server-sent events of the three generation APIs, turned into `StreamEvent`s.

chat/completions and completions end with `data: [DONE]` (or a finish reason and EOF); the
Responses API ends with `response.completed` / `response.incomplete`, and reports failure as
`response.failed` or `error`. Reasoning deltas (`reasoning_content`, OpenRouter's `reasoning`,
`response.reasoning_*`) are kept apart from the answer text.

Function calls come as `ToolCallDelta`s: chat's `delta.tool_calls[i] = {index, id?, type?,
function: {name?, arguments?}}`; the Responses API's `function_call` output items with
`response.function_call_arguments.delta` / `.done` per `item_id`, and the whole items again
in `response.output_item.done` and the final `response.completed`. Servers differ: some send
the arguments as an object instead of JSON text (re-encoded here), or no index at all.
"""

from __future__ import annotations

import json
from typing import Any

from bot.errors import LLMProtocolError, LLMStatusError
from bot.llm.errors_map import error_from_payload, stream_error
from bot.llm.types import StreamEvent, ToolCallDelta, Usage

DONE = "[DONE]"
RESPONSE_ERROR_STATUS = {
    "rate_limit_exceeded": 429,
    "invalid_api_key": 401,
    "model_not_found": 404,
    "context_length_exceeded": 400,
    "invalid_prompt": 400,
}


def _load(data: str) -> dict[str, Any]:
    try:
        payload: Any = json.loads(data)
    except ValueError as exc:
        raise LLMProtocolError(f"invalid JSON in stream: {data[:80]!r}") from exc
    if not isinstance(payload, dict):
        raise LLMProtocolError(f"unexpected stream payload: {data[:80]!r}")
    return payload


def _usage(raw: Any, prompt: str, completion: str) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    return Usage(int(raw.get(prompt) or 0), int(raw.get(completion) or 0))


def _text(value: Any) -> str:
    """A name or arguments piece as text: objects (some servers send them) as JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _chat_calls(fragments: Any) -> tuple[ToolCallDelta, ...]:
    found: list[ToolCallDelta] = []
    for fragment in fragments if isinstance(fragments, list) else ():
        if not isinstance(fragment, dict):
            continue
        index = fragment.get("index")
        function = fragment.get("function")
        function = function if isinstance(function, dict) else {}
        found.append(
            ToolCallDelta(
                index=index if isinstance(index, int) and not isinstance(index, bool) else None,
                call_id=_text(fragment.get("id")),
                name=_text(function.get("name")),
                arguments=_text(function.get("arguments")),
            )
        )
    return tuple(found)


def parse_chunk(data: str, *, secret: str = "") -> StreamEvent | None:
    """Parse one `data:` payload of a chat or text completion stream (None when empty)."""
    chunk = _load(data)
    if chunk.get("error"):
        raise stream_error(chunk, secret=secret)
    text, reasoning, finish = "", "", None
    calls: tuple[ToolCallDelta, ...] = ()
    choices = [c for c in chunk.get("choices") or [] if isinstance(c, dict)]
    first = next((c for c in choices if c.get("index", 0) == 0), None)
    if first is not None:
        delta = first.get("delta")
        if not isinstance(delta, dict):
            delta = first.get("message")  # a few servers stream whole messages
        if isinstance(delta, dict):
            text = delta.get("content") or ""
            reasoning = delta.get("reasoning_content") or delta.get("reasoning") or ""
            calls = _chat_calls(delta.get("tool_calls"))
        else:
            text = first.get("text") or ""
        finish = first.get("finish_reason")
    usage = _usage(chunk.get("usage"), "prompt_tokens", "completion_tokens")
    if not text and not reasoning and not calls and finish is None and usage is None:
        return None
    return StreamEvent(
        text=str(text),
        finish_reason=finish,
        usage=usage,
        reasoning=str(reasoning),
        tool_calls=calls,
    )


def _function_item(item: Any, index: Any, *, whole: bool) -> ToolCallDelta | None:
    """A Responses `function_call` output item as a delta (None for other items)."""
    if not isinstance(item, dict) or item.get("type") != "function_call":
        return None
    position = index if isinstance(index, int) else None
    key = _text(item.get("id") or item.get("call_id")) or f"item_{position}"
    arguments = item.get("arguments")
    return ToolCallDelta(
        index=position,
        call_id=_text(item.get("call_id")),
        name=_text(item.get("name")),
        arguments=_text(arguments),
        item_id=key,
        whole=whole or bool(arguments),
    )


class CompletionEvents:
    """chat/completions and completions streams (`data: {chunk}` ... `data: [DONE]`)."""

    def __init__(self, secret: str = "") -> None:
        self.done = False
        self.finished = False
        self._secret = secret

    def feed(self, event: str, data: str) -> StreamEvent | None:
        if data.strip() == DONE:
            self.done = self.finished = True
            return None
        parsed = parse_chunk(data, secret=self._secret)
        if parsed is not None and parsed.finish_reason is not None:
            self.finished = True
        return parsed


class ResponseEvents:
    """Responses API streams: typed events, each JSON payload carrying its `type`."""

    def __init__(self, secret: str = "") -> None:
        self.done = False
        self.finished = False
        self._secret = secret

    def feed(self, event: str, data: str) -> StreamEvent | None:
        payload = _load(data)
        kind = str(payload.get("type") or event)
        delta = str(payload.get("delta") or "")
        if kind == "response.output_text.delta":
            return StreamEvent(text=delta) if delta else None
        if kind.startswith("response.reasoning") and kind.endswith(".delta"):
            return StreamEvent(reasoning=delta) if delta else None
        if kind.startswith("response.function_call_arguments."):
            whole = kind.endswith(".done")
            if whole and "arguments" not in payload:
                return None
            piece = _text(payload.get("arguments") if whole else payload.get("delta"))
            call = ToolCallDelta(
                item_id=_text(payload.get("item_id")), arguments=piece, whole=whole
            )
            return StreamEvent(tool_calls=(call,))
        if kind in ("response.output_item.added", "response.output_item.done"):
            found = _function_item(
                payload.get("item"), payload.get("output_index"), whole=kind.endswith(".done")
            )
            return StreamEvent(tool_calls=(found,)) if found is not None else None
        if kind in ("response.completed", "response.incomplete"):
            self.done = self.finished = True
            return self._final(payload.get("response"))
        if kind == "response.failed":
            response = payload.get("response")
            raise self._error(response.get("error") if isinstance(response, dict) else None)
        if kind == "error":
            raise self._error(payload.get("error", payload))
        return None

    @staticmethod
    def _final(response: Any) -> StreamEvent:
        response = response if isinstance(response, dict) else {}
        finish = "stop"
        if response.get("status") == "incomplete":
            details = response.get("incomplete_details") or {}
            reason = details.get("reason") if isinstance(details, dict) else None
            finish = "length" if reason in (None, "max_output_tokens") else str(reason)
        usage = _usage(response.get("usage"), "input_tokens", "output_tokens")
        output = response.get("output")
        items = enumerate(output if isinstance(output, list) else ())
        calls = tuple(found for i, item in items if (found := _function_item(item, i, whole=True)))
        if calls and finish == "stop":
            finish = "tool_calls"
        return StreamEvent(finish_reason=finish, usage=usage, tool_calls=calls)

    def _error(self, error: Any) -> LLMStatusError:
        error = error if isinstance(error, dict) else {"message": str(error or "no details")}
        code = str(error.get("code") or "")
        status = int(code) if code.isdigit() else RESPONSE_ERROR_STATUS.get(code, 500)
        return error_from_payload(status, {"error": error}, secret=self._secret)


def events_for(api: str, secret: str = "") -> CompletionEvents | ResponseEvents:
    """A fresh parser for one stream of the given API mode."""
    return ResponseEvents(secret) if api == "responses" else CompletionEvents(secret)
