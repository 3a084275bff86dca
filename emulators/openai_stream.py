"""Response bodies, SSE streaming and fault injection for the OpenAI emulator."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aiohttp import web

if TYPE_CHECKING:
    from emulators.openai_api import Reply

SYSTEM_FINGERPRINT = "fp_emulator"
DONE = b"data: [DONE]\n\n"
MALFORMED = b'data: {"choices": [\n\n'
HANG_POLL_SECONDS = 0.05

Kind = Literal["chat", "legacy", "responses"]


class EmulatorStopping(Exception):
    """Raised inside a handler when the emulator shuts down during a delay or hang."""


class Pacer:
    """Delays and hangs that end early when the emulator stops or the client leaves."""

    def __init__(self) -> None:
        self.stopping = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds``; raise ``EmulatorStopping`` if the emulator stops meanwhile."""
        if seconds <= 0:
            if self.stopping.is_set():
                raise EmulatorStopping
            return
        try:
            await asyncio.wait_for(self.stopping.wait(), seconds)
        except TimeoutError:
            return
        raise EmulatorStopping

    async def hang(self, request: web.BaseRequest) -> None:
        """Wait until the client disconnects (returns) or the emulator stops (raises)."""
        while not _client_gone(request):
            await self.sleep(HANG_POLL_SECONDS)


def _client_gone(request: web.BaseRequest) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


def abort_connection(request: web.BaseRequest) -> None:
    """Close the socket under a response so the client sees a truncated body."""
    transport = request.transport
    if transport is not None:
        transport.close()


@dataclass
class Completion:
    """A resolved answer: the text to emit, why it ends and the usage to report."""

    kind: Kind
    model: str
    text: str
    finish_reason: str
    usage: dict[str, int]
    include_usage: bool = False
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))

    def __post_init__(self) -> None:
        if not self.id:
            prefix = "chatcmpl-" if self.kind == "chat" else "cmpl-"
            self.id = prefix + uuid.uuid4().hex[:29]

    # --- bodies ---------------------------------------------------------------------------

    def _head(self, chunk: bool) -> dict[str, Any]:
        if self.kind == "chat":
            obj = "chat.completion.chunk" if chunk else "chat.completion"
            return {
                "id": self.id,
                "object": obj,
                "created": self.created,
                "model": self.model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
            }
        return {
            "id": self.id,
            "object": "text_completion",
            "created": self.created,
            "model": self.model,
        }

    def full_body(self) -> dict[str, Any]:
        """The non-streaming JSON response."""
        if self.kind == "chat":
            message = {"role": "assistant", "content": self.text, "refusal": None}
            choice: dict[str, Any] = {"index": 0, "message": message, "logprobs": None}
        else:
            choice = {"text": self.text, "index": 0, "logprobs": None}
        choice["finish_reason"] = self.finish_reason
        return {**self._head(chunk=False), "choices": [choice], "usage": self.usage}

    def chunk(self, delta: dict[str, Any] | str, finish_reason: str | None = None) -> bytes:
        """One SSE event; ``delta`` is a chat delta dict or a legacy text piece."""
        if self.kind == "chat":
            choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None}
        else:
            choice = {"text": delta, "index": 0, "logprobs": None}
        choice["finish_reason"] = finish_reason
        body = {**self._head(chunk=True), "choices": [choice]}
        if self.include_usage:
            body["usage"] = None
        return sse(body)

    def role_chunk(self) -> bytes | None:
        """The opening chat delta (legacy streams have none)."""
        if self.kind != "chat":
            return None
        return self.chunk({"role": "assistant", "content": "", "refusal": None})

    def piece_chunk(self, piece: str) -> bytes:
        """A content delta."""
        return self.chunk({"content": piece} if self.kind == "chat" else piece)

    def finish_chunk(self) -> bytes:
        """The closing delta carrying the finish reason."""
        return self.chunk({} if self.kind == "chat" else "", self.finish_reason)

    def usage_chunk(self) -> bytes:
        """The trailing ``choices: []`` chunk with usage."""
        return sse({**self._head(chunk=True), "choices": [], "usage": self.usage})


def sse(payload: dict[str, Any]) -> bytes:
    """Frame one JSON payload as an SSE event."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def split_pieces(text: str, size: int) -> list[str]:
    """Split text into pieces of ``size`` characters (code points, never surrogate halves)."""
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)]


def _fault_point(value: int | None, total: int) -> int | None:
    """Delta count at which a fault fires (clamped to the number of deltas available)."""
    return None if value is None else min(max(value, 0), total)


class StreamWriter:
    """Writes one streamed completion, honouring delays and scripted faults."""

    def __init__(
        self, request: web.BaseRequest, reply: Reply, completion: Completion, pacer: Pacer
    ) -> None:
        self.request = request
        self.reply = reply
        self.completion = completion
        self.pacer = pacer
        self.response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )

    async def run(self) -> web.StreamResponse:
        """Send the whole stream (or stop at the scripted fault)."""
        await self.response.prepare(self.request)
        pieces = split_pieces(self.completion.text, self.reply.chunk_chars)
        if await self._fault(0, len(pieces)):
            return self.response
        await self._open()
        if self.reply.endless:
            await self._endless(pieces)
            return self.response
        for sent, piece in enumerate(pieces, start=1):
            await self.pacer.sleep(
                self.reply.first_token_delay if sent == 1 else self.reply.chunk_delay
            )
            if self.reply.keepalive_comments:
                await self.response.write(f": {self.reply.keepalive_text}\n\n".encode())
            await self.response.write(self._piece(piece))
            if await self._fault(sent, len(pieces)):
                return self.response
        await self._finish()
        return self.response

    async def _endless(self, pieces: list[str]) -> None:
        """Stream the pieces round and round while the client listens."""
        sent = 0
        try:
            while pieces and not _client_gone(self.request):
                delay = self.reply.first_token_delay if sent == 0 else self.reply.chunk_delay
                await self.pacer.sleep(delay)
                await self.response.write(self._piece(pieces[sent % len(pieces)]))
                sent += 1
                if not delay:
                    await asyncio.sleep(0)  # let the client's close be noticed
        except (ConnectionError, RuntimeError):  # the client closed the response
            pass
        finally:  # also when aiohttp cancels the handler of a client that left
            self.reply.client_left = not self.pacer.stopping.is_set()

    async def _open(self) -> None:
        """What precedes the content: an empty delta, the role delta, reasoning deltas."""
        chat = self.completion.kind == "chat"
        if self.reply.empty_first_delta:
            await self.response.write(self.completion.chunk({} if chat else ""))
        role = self.completion.role_chunk()
        if role is not None:
            await self.response.write(role)
        if chat:
            for piece in split_pieces(self.reply.reasoning, self.reply.chunk_chars):
                delta = {"content": None, "reasoning_content": piece}
                await self.response.write(self.completion.chunk(delta))

    def _piece(self, piece: str) -> bytes:
        return self.completion.piece_chunk(piece)

    async def _finish(self) -> None:
        await self.response.write(self.completion.finish_chunk())
        if self.completion.include_usage:
            await self.response.write(self.completion.usage_chunk())
        await self.response.write(DONE)
        await self.response.write_eof()

    async def _fault(self, sent: int, total: int) -> bool:
        """Inject the fault due after ``sent`` deltas; True when the stream must end."""
        reply = self.reply
        if _fault_point(reply.cut_after, total) == sent:
            abort_connection(self.request)
            return True
        if _fault_point(reply.malformed_after, total) == sent:
            await self.response.write(MALFORMED)
            await self.response.write_eof()
            return True
        if _fault_point(reply.hang_after, total) == sent:
            await self.pacer.hang(self.request)
            abort_connection(self.request)
            return True
        return False


async def send_full(
    request: web.BaseRequest, reply: Reply, completion: Completion, pacer: Pacer
) -> web.StreamResponse:
    """Send a non-streaming answer, applying delays and faults to the JSON body."""
    pieces = max(1, len(split_pieces(completion.text, reply.chunk_chars)))
    await pacer.sleep(reply.first_token_delay + reply.chunk_delay * (pieces - 1))
    if reply.malformed_after is not None:
        return web.Response(body=MALFORMED[6:].strip(), content_type="application/json")
    if reply.cut_after is None and reply.hang_after is None:
        return web.json_response(completion.full_body())
    body = json.dumps(completion.full_body()).encode()
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    if reply.cut_after is not None:
        await response.write(body[: len(body) // 2])
        abort_connection(request)
        return response
    await pacer.hang(request)
    abort_connection(request)
    return response
