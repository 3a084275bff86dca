"""What tests script for the OpenAI emulator (``Reply``) and what it records."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """One scripted answer: ``text`` streamed in ``chunk_chars`` pieces, or a fault.

    ``status`` answers with an OpenAI-shaped HTTP error instead (``error_*`` override the
    stock body, ``retry_after`` sets ``Retry-After``). ``cut_after`` / ``hang_after`` /
    ``malformed_after`` count content deltas (clamped to the deltas available); 0 means
    right after the headers, before any body byte. ``cut_after`` closes the socket,
    ``hang_after`` waits until the client leaves or the emulator stops, ``malformed_after``
    sends a broken ``data:`` event and ends the body. Non-streaming requests get the whole
    delay up front and, for a fault, a half-sent/hanging/invalid JSON body.

    Server quirks: ``keepalive_comments`` sends ``: <keepalive_text>`` before each delta,
    ``omit_usage`` never reports usage, ``empty_first_delta`` opens with an empty delta,
    ``reasoning`` is streamed first as ``reasoning_content`` deltas (Responses API: reasoning
    summary events). ``fail_after`` / ``fail_event``: see ``openai_responses``. One huge delta:
    ``chunk_chars=len(text)``.
    """

    text: str = ""
    chunk_chars: int = 8
    first_token_delay: float = 0.0
    chunk_delay: float = 0.0
    finish_reason: str = "stop"
    status: int | None = None
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    retry_after: float | None = None
    cut_after: int | None = None
    hang_after: int | None = None
    hang_before_headers: bool = False
    malformed_after: int | None = None
    omit_usage: bool = False
    keepalive_comments: bool = False
    keepalive_text: str = "keep-alive"
    usage: dict[str, int] | None = None
    reasoning: str = ""
    empty_first_delta: bool = False
    fail_after: int | None = None
    fail_event: str = "response.failed"
    hold: asyncio.Event | None = None  # answer only once the test sets it
    # A server that ignores max_tokens: ``text`` is streamed over and over until the client
    # closes the response (or the emulator stops); no finish, usage or [DONE] ever comes.
    endless: bool = False
    ignore_max_tokens: bool = False  # send all of ``text`` whatever max_tokens says
    client_left: bool = False  # set by the emulator when the client closed an endless stream


@dataclass
class RecordedRequest:
    """A request received under ``/v1/`` (headers lower-cased; body ``{}`` if not JSON)."""

    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float
    method: str = "POST"
    query: dict[str, str] = field(default_factory=dict)
