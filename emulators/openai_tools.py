"""Function calling in the OpenAI emulator: scripted tool-call streams and OpenAI's checks.

``ToolCallsReply`` answers with tool calls instead of (or after) text: chat/completions
streams ``delta.tool_calls`` fragments (the arguments split every ``chunk_chars``; several
calls interleaved when ``interleave``; ``ScriptedCall.arguments`` is sent as given, so bad
JSON can be scripted) and ends with ``finish_reason: "tool_calls"``; the Responses API
streams ``function_call`` output items with ``response.function_call_arguments.delta``.

Requests are checked as strictly as OpenAI does: a ``tool`` message must answer a call of
the assistant message right before it, every call must be answered before the next other
message, ``tools`` entries must be well-formed; on the Responses API every
``function_call_output`` must match an earlier ``function_call`` and every call be answered.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from emulators.openai_errors import ApiError
from emulators.openai_replies import Reply
from emulators.openai_responses import ResponsesCompletion, ResponsesWriter, is_function_item
from emulators.openai_stream import Completion, StreamWriter, split_pieces

NAME_RULE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass
class ScriptedCall:
    """One call the model makes; ``arguments`` is the raw text (invalid JSON allowed)."""

    name: str
    arguments: str = "{}"
    id: str = field(default_factory=lambda: "call_" + uuid.uuid4().hex[:24])


@dataclass
class ToolCallsReply(Reply):
    """A reply whose step ends with tool calls (``text`` first, if any)."""

    calls: list[ScriptedCall] = field(default_factory=list)
    interleave: bool = False  # parallel calls: fragments of all calls round-robin
    finish_reason: str = "tool_calls"
    chunk_chars: int = 5


# --- request validation -----------------------------------------------------------------------


def _bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(400, message, param=param)


def validate_chat_tools(body: dict[str, Any]) -> None:
    """``tools`` entries and the tool-call/tool-message pairing of a chat request."""
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list) or not tools:
            raise _bad(
                "Invalid 'tools': empty array. Expected an array with minimum length 1.", "tools"
            )
        for index, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if (
                not isinstance(tool, dict)
                or tool.get("type") != "function"
                or not isinstance(function, dict)
            ):
                raise _bad(
                    f"Missing required parameter: 'tools[{index}].function'.",
                    f"tools[{index}].function",
                )
            _check_function(f"tools[{index}].function", function)
    elif body.get("tool_choice") is not None:
        raise _bad(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
            "specified.",
            "tool_choice",
        )
    _check_pairing(body["messages"])


def _check_function(where: str, function: dict[str, Any]) -> None:
    name = function.get("name")
    if not isinstance(name, str) or not NAME_RULE.match(name):
        raise _bad(
            f"Invalid '{where}.name': string does not match pattern. Expected a string that "
            "matches the pattern '^[a-zA-Z0-9_-]+$'.",
            f"{where}.name",
        )
    parameters = function.get("parameters")
    if parameters is not None and (
        not isinstance(parameters, dict) or parameters.get("type") != "object"
    ):
        raise _bad(
            f"Invalid schema for function '{name}': schema must be a JSON Schema of "
            "'type: \"object\"'.",
            f"{where}.parameters",
        )


def _check_pairing(messages: list[dict[str, Any]]) -> None:
    pending: list[str] = []  # calls of the last assistant message not yet answered
    answerable: set[str] = set()
    for index, message in enumerate(messages):
        role = message.get("role")
        if role == "tool":
            call_id = message.get("tool_call_id")
            if call_id not in answerable:
                raise _bad(
                    "Invalid parameter: messages with role 'tool' must be a response to a "
                    "preceeding message with 'tool_calls'.",
                    f"messages.[{index}].role",
                )
            answerable.discard(call_id)
            pending = [p for p in pending if p != call_id]
            continue
        if pending:
            raise _unanswered(pending, index - 1)
        answerable = set()
        if role == "assistant" and message.get("tool_calls"):
            ids = _call_ids(message["tool_calls"], index)
            pending, answerable = list(ids), set(ids)
    if pending:
        raise _unanswered(pending, len(messages) - 1)


def _call_ids(tool_calls: Any, index: int) -> list[str]:
    if not isinstance(tool_calls, list):
        raise _bad(f"Invalid type for 'messages[{index}].tool_calls': expected an array.")
    ids: list[str] = []
    for n, call in enumerate(tool_calls):
        function = call.get("function") if isinstance(call, dict) else None
        if (
            not isinstance(call, dict)
            or not isinstance(call.get("id"), str)
            or not isinstance(function, dict)
        ):
            raise _bad(f"Missing required parameter: 'messages[{index}].tool_calls[{n}].id'.")
        if not isinstance(function.get("arguments"), str) or not isinstance(
            function.get("name"), str
        ):
            raise _bad(
                "Missing required parameter: "
                f"'messages[{index}].tool_calls[{n}].function.arguments'."
            )
        ids.append(call["id"])
    return ids


def _unanswered(ids: list[str], index: int) -> ApiError:
    return _bad(
        "An assistant message with 'tool_calls' must be followed by tool messages responding "
        "to each 'tool_call_id'. The following tool_call_ids did not have response messages: "
        + ", ".join(ids),
        f"messages.[{index}].role",
    )


def validate_responses_tools(body: dict[str, Any]) -> None:
    """Responses API: flat ``tools`` entries; every call answered, every output matched."""
    for index, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            raise _bad(f"Invalid value for 'tools[{index}].type'.", f"tools[{index}].type")
        if "function" in tool:
            raise _bad(f"Unknown parameter: 'tools[{index}].function'.", f"tools[{index}].function")
        _check_function(f"tools[{index}]", tool)
    items = body.get("input")
    if not isinstance(items, list):
        return
    calls: set[str] = set()
    answered: set[str] = set()
    for index, item in enumerate(items):
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                if not isinstance(item.get(key), str):
                    raise _bad(
                        f"Missing required parameter: 'input[{index}].{key}'.",
                        f"input[{index}].{key}",
                    )
            calls.add(item["call_id"])
        elif kind == "function_call_output":
            call_id = item.get("call_id")
            if call_id not in calls:
                raise _bad(
                    f"No tool call found for function call output with call_id {call_id}.", "input"
                )
            if not isinstance(item.get("output"), str | list):
                raise _bad(
                    f"Missing required parameter: 'input[{index}].output'.",
                    f"input[{index}].output",
                )
            answered.add(call_id)
    missing = sorted(calls - answered)
    if missing:
        raise _bad(f"No tool output found for function call {missing[0]}.", "input")


# --- answers ----------------------------------------------------------------------------------


def _fragments(reply: ToolCallsReply) -> list[tuple[int, str]]:
    """(call index, argument piece) in the order they are sent."""
    per_call = [split_pieces(c.arguments, reply.chunk_chars) for c in reply.calls]
    if not reply.interleave:
        return [(i, p) for i, pieces in enumerate(per_call) for p in pieces]
    order: list[tuple[int, str]] = []
    for step in range(max((len(p) for p in per_call), default=0)):
        order += [(i, pieces[step]) for i, pieces in enumerate(per_call) if step < len(pieces)]
    return order


def chat_message(reply: ToolCallsReply, text: str) -> dict[str, Any]:
    """The non-streamed assistant message with its ``tool_calls``."""
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in reply.calls
    ]
    return {"role": "assistant", "content": text or None, "refusal": None, "tool_calls": calls}


class ChatToolCallWriter(StreamWriter):
    """chat/completions: the text deltas, then the ``tool_calls`` fragments, then the finish."""

    reply: ToolCallsReply

    async def _finish(self) -> None:
        reply, done = self.reply, self.completion
        if reply.interleave:
            for index, call in enumerate(reply.calls):
                await self.response.write(done.chunk({"tool_calls": [_opening(index, call)]}))
        for index, piece in _fragments(reply) if reply.interleave else []:
            await self._arguments(index, piece)
        if not reply.interleave:
            fragments = _fragments(reply)
            for index, call in enumerate(reply.calls):
                await self.response.write(done.chunk({"tool_calls": [_opening(index, call)]}))
                for _, piece in (f for f in fragments if f[0] == index):
                    await self._arguments(index, piece)
        await super()._finish()

    async def _arguments(self, index: int, piece: str) -> None:
        await self.pacer.sleep(self.reply.chunk_delay)
        delta = {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
        await self.response.write(self.completion.chunk(delta))


def _opening(index: int, call: ScriptedCall) -> dict[str, Any]:
    return {
        "index": index,
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": ""},
    }


def responses_output(reply: ToolCallsReply, text: str) -> list[dict[str, Any]]:
    """The ``output`` list of a finished Responses answer: the text message, then the calls."""
    output: list[dict[str, Any]] = []
    if text:
        content = [{"type": "output_text", "text": text, "annotations": []}]
        output.append({"type": "message", "role": "assistant", "content": content})
    output += [_function_item(c, c.arguments, "completed") for c in reply.calls]
    return output


def _function_item(call: ScriptedCall, arguments: str, status: str) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": "fc_" + call.id.removeprefix("call_"),
        "call_id": call.id,
        "name": call.name,
        "arguments": arguments,
        "status": status,
    }


class ResponsesToolCallWriter(ResponsesWriter):
    """Responses API: the text, then each ``function_call`` item with its argument deltas."""

    reply: ToolCallsReply

    async def _open(self) -> None:
        if self.completion.text:
            await super()._open()
            return
        done = self.completion  # no text: no message item, only the calls
        for kind in ("response.created", "response.in_progress"):
            await self.response.write(done.event(kind, response=done.response("in_progress")))

    async def _finish(self) -> None:
        done, reply = self.completion, self.reply
        if done.text:
            await self.response.write(done.event("response.output_text.done", text=done.text))
        first = 2
        for offset, call in enumerate(reply.calls):
            index = first + offset
            item = _function_item(call, "", "in_progress")
            await self.response.write(
                done.event("response.output_item.added", output_index=index, item=item)
            )
            for piece in split_pieces(call.arguments, reply.chunk_chars):
                await self.pacer.sleep(reply.chunk_delay)
                await self.response.write(
                    done.event(
                        "response.function_call_arguments.delta",
                        item_id=item["id"],
                        output_index=index,
                        delta=piece,
                    )
                )
            await self.response.write(
                done.event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=call.arguments,
                )
            )
            final_item = _function_item(call, call.arguments, "completed")
            await self.response.write(
                done.event("response.output_item.done", output_index=index, item=final_item)
            )
        final = done.response("completed", text=done.text)
        final["output"] = responses_output(reply, done.text)
        await self.response.write(done.event("response.completed", response=final))
        await self.response.write_eof()


def tool_writer(writer: type[StreamWriter], reply: Reply) -> type[StreamWriter]:
    """The writer for ``reply``: the tool-call variant of ``writer`` for a ``ToolCallsReply``."""
    if not isinstance(reply, ToolCallsReply):
        return writer
    return ResponsesToolCallWriter if writer is ResponsesWriter else ChatToolCallWriter


def full_tool_body(completion: Completion, reply: ToolCallsReply) -> dict[str, Any]:
    """A non-streamed answer with the calls."""
    if isinstance(completion, ResponsesCompletion):
        body = completion.response("completed", text=completion.text)
        body["output"] = responses_output(reply, completion.text)
        return body
    body = completion.full_body()
    body["choices"][0]["message"] = chat_message(reply, completion.text)
    return body


async def send_full_tools(completion: Completion, reply: ToolCallsReply) -> web.StreamResponse:
    return web.json_response(full_tool_body(completion, reply))


__all__ = [
    "ScriptedCall",
    "ToolCallsReply",
    "is_function_item",
    "tool_writer",
    "validate_chat_tools",
    "validate_responses_tools",
]
