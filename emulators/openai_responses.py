"""The Responses API (``POST /v1/responses``) of the OpenAI emulator: validation, bodies and the
typed event stream (``event: response.output_text.delta`` ... ``response.completed``).

``Reply.reasoning`` is streamed as ``response.reasoning_summary_text.delta`` events first;
``Reply.fail_after`` ends the stream after that many text deltas with ``response.failed`` (or a
bare ``error`` event when ``Reply.fail_event == "error"``), carrying ``Reply.error_code`` and
``Reply.error_message``.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from emulators.openai_errors import ApiError, validate_common
from emulators.openai_stream import Completion, StreamWriter, split_pieces
from emulators.openai_tokens import content_text

UNSUPPORTED = ("messages", "prompt", "max_tokens", "stop", "n", "logit_bias")


def validate_responses(body: dict[str, Any]) -> None:
    """Validate a ``/v1/responses`` body like OpenAI does (raises ``ApiError``)."""
    for name in UNSUPPORTED:
        if name in body:
            raise ApiError(400, f"Unsupported parameter: '{name}'.", param=name)
    validate_common(body)
    value = body.get("max_output_tokens")
    if value is not None and (not isinstance(value, int) or value < 16):
        raise ApiError(
            400,
            "Invalid 'max_output_tokens': expected an integer >= 16.",
            param="max_output_tokens",
        )
    if body.get("instructions") is not None and not isinstance(body["instructions"], str):
        raise ApiError(400, "Invalid type for 'instructions'.", param="instructions")
    items = body.get("input")
    if isinstance(items, str):
        return
    if not isinstance(items, list) or not items:
        raise ApiError(400, "Missing required parameter: 'input'.", param="input")
    for index, item in enumerate(items):
        if is_function_item(item):
            continue  # calls and their outputs: openai_tools.validate_responses_tools
        kind = item.get("type", "message") if isinstance(item, dict) else None
        if kind != "message" or item.get("role") not in ("user", "assistant", "developer"):
            raise ApiError(400, f"Invalid 'input[{index}]'.", param=f"input[{index}]")


def is_function_item(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") in ("function_call", "function_call_output")


def input_messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request as chat messages (for token counting and the default echo reply)."""
    items = body["input"]
    messages = (
        [{"role": "system", "content": body["instructions"]}] if body.get("instructions") else []
    )
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    return messages + [
        {"role": item["role"], "content": content_text(item.get("content"))}
        if "role" in item
        else {"role": "tool", "content": item.get("output") or item.get("arguments", "")}
        for item in items
    ]


@dataclass
class ResponsesCompletion(Completion):
    """A Responses API answer; ``usage`` holds chat-style counts, renamed on the way out."""

    sequence: int = field(default=0)

    def __post_init__(self) -> None:
        self.id = self.id or "resp_" + uuid.uuid4().hex

    def _usage(self) -> dict[str, int]:
        prompt, completion = self.usage["prompt_tokens"], self.usage["completion_tokens"]
        return {
            "input_tokens": prompt,
            "output_tokens": completion,
            "total_tokens": prompt + completion,
        }

    def response(
        self, status: str, *, text: str = "", error: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "response",
            "created_at": self.created,
            "status": status,
            "model": self.model,
            "output": [],
            "usage": None,
            "error": error,
            "incomplete_details": None,
        }
        if status in ("completed", "incomplete"):
            content = [{"type": "output_text", "text": text, "annotations": []}]
            body["output"] = [{"type": "message", "role": "assistant", "content": content}]
            body["usage"] = self._usage()
        if status == "incomplete":
            body["incomplete_details"] = {"reason": "max_output_tokens"}
        return body

    def status(self) -> str:
        return "incomplete" if self.finish_reason == "length" else "completed"

    def full_body(self) -> dict[str, Any]:
        return self.response(self.status(), text=self.text)

    def event(self, kind: str, **payload: Any) -> bytes:
        """One typed SSE event: ``event: kind`` and the JSON with ``type`` and a sequence number."""
        data = {"type": kind, "sequence_number": self.sequence, **payload}
        self.sequence += 1
        return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class ResponsesWriter(StreamWriter):
    """Streams a ``ResponsesCompletion`` as typed events."""

    completion: ResponsesCompletion

    async def _open(self) -> None:
        done = self.completion
        await self.response.write(
            done.event("response.created", response=done.response("in_progress"))
        )
        await self.response.write(
            done.event("response.in_progress", response=done.response("in_progress"))
        )
        for piece in split_pieces(self.reply.reasoning, self.reply.chunk_chars):
            await self.response.write(
                done.event("response.reasoning_summary_text.delta", output_index=0, delta=piece)
            )
        item = {"type": "message", "role": "assistant", "content": []}
        await self.response.write(
            done.event("response.output_item.added", output_index=1, item=item)
        )

    def _piece(self, piece: str) -> bytes:
        return self.completion.event(
            "response.output_text.delta", output_index=1, content_index=0, delta=piece
        )

    async def _fault(self, sent: int, total: int) -> bool:
        if await super()._fault(sent, total):
            return True
        if self.reply.fail_after is None or min(self.reply.fail_after, total) != sent:
            return False
        error = {
            "code": self.reply.error_code or "server_error",
            "message": self.reply.error_message or "The model failed to generate a response.",
        }
        done = self.completion
        if self.reply.fail_event == "error":
            await self.response.write(done.event("error", param=None, **error))
        else:
            failed = done.response("failed", error=error)
            await self.response.write(done.event("response.failed", response=failed))
        await self.response.write_eof()
        return True

    async def _finish(self) -> None:
        done = self.completion
        await self.response.write(done.event("response.output_text.done", text=done.text))
        status = done.status()
        final = done.response(status, text=done.text)
        if self.reply.omit_usage:
            final["usage"] = None
        await self.response.write(done.event(f"response.{status}", response=final))
        await self.response.write_eof()
