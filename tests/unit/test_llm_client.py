"""ChatClient against an in-process `httpx.MockTransport`: SSE parsing, the request it sends,
error mapping, and the retry policy (retries only before the first token). No sockets, no sleeps.
"""

from __future__ import annotations

import email.utils
import json
import types
from collections.abc import AsyncIterator, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.errors import (
    ContextLengthError,
    LLMAuthError,
    LLMBadRequestError,
    LLMConnectionError,
    LLMError,
    LLMNotFoundError,
    LLMProtocolError,
    LLMRateLimitError,
    LLMServerError,
    LLMStatusError,
    LLMTimeoutError,
)
from bot.llm import errors_map
from bot.llm.client import MAX_RETRY_WAIT, ChatClient, parse_chunk
from bot.llm.types import ChatMessage, ChatRequest, Sampling, StreamEvent, Usage

API_KEY = "sk-test-9f8e7d6c5b4a-SECRET"
BASE_URL = "http://llm.test/v1"
MODEL = "gpt-4o-mini"
REQUEST = ChatRequest(model=MODEL, messages=(ChatMessage("user", "Hi"),), max_tokens=64)

Reply = Callable[[httpx.Request], httpx.Response]


# --- building server answers ------------------------------------------------------------------


def chunk(
    *,
    content: str | None = None,
    role: str | None = None,
    finish: str | None = None,
    usage: dict[str, int] | None = None,
    no_choices: bool = False,
) -> dict[str, Any]:
    """One chat.completion.chunk in the exact shape the OpenAI API streams."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
        delta["refusal"] = None
    if content is not None:
        delta["content"] = content
    choices = (
        []
        if no_choices
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    return {
        "id": "chatcmpl-abc123",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": MODEL,
        "system_fingerprint": "fp_0123456789",
        "choices": choices,
        "usage": usage,
    }


def sse_body(*chunks: dict[str, Any] | str, done: bool = True) -> bytes:
    """`data: {json}\\n\\n` per chunk (strings are sent verbatim), then `data: [DONE]`."""
    frames = [f"data: {c if isinstance(c, str) else json.dumps(c)}\n\n" for c in chunks]
    if done:
        frames.append("data: [DONE]\n\n")
    return "".join(frames).encode()


def reply_text(*deltas: str, usage: tuple[int, int] | None = (9, 2)) -> bytes:
    """A whole successful reply: role-only delta, content deltas, finish chunk, usage chunk."""
    chunks: list[dict[str, Any]] = [chunk(role="assistant", content="")]
    chunks += [chunk(content=d) for d in deltas]
    chunks.append(chunk(finish="stop"))
    if usage is not None:
        prompt, completion = usage
        numbers = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        chunks.append(chunk(no_choices=True, usage=numbers))
    return sse_body(*chunks)


SSE_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}


def sse(body: bytes) -> Reply:
    return lambda request: httpx.Response(200, headers=SSE_HEADERS, content=body)


def ok(*deltas: str) -> Reply:
    return sse(reply_text(*deltas))


def status(
    code: int, body: Any = None, headers: dict[str, str] | None = None, *, raw: bytes = b""
) -> Reply:
    content = json.dumps(body).encode() if body is not None else raw
    content_type = "application/json" if body is not None else "text/html"
    all_headers = {"content-type": content_type, **(headers or {})}
    return lambda request: httpx.Response(code, headers=all_headers, content=content)


def fail(make: Callable[[httpx.Request], Exception]) -> Reply:
    def reply(request: httpx.Request) -> httpx.Response:
        raise make(request)

    return reply


class ChunkedStream(httpx.AsyncByteStream):
    """A response body delivered in the given pieces, optionally broken off by an error."""

    def __init__(self, pieces: Iterable[bytes], error: Exception | None = None) -> None:
        self.pieces = list(pieces)
        self.error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece
        if self.error is not None:
            raise self.error


def streamed(pieces: Iterable[bytes], error: Exception | None = None) -> Reply:
    return lambda request: httpx.Response(
        200, headers=SSE_HEADERS, stream=ChunkedStream(pieces, error)
    )


class Server:
    """MockTransport handler playing the given replies in order (the last one repeats)."""

    def __init__(self, *replies: Reply) -> None:
        self.replies = list(replies)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        return reply(request)

    @property
    def calls(self) -> int:
        return len(self.requests)


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Harness:
    def __init__(self, server: Server, client: ChatClient, sleep: FakeSleep) -> None:
        self.server = server
        self.client = client
        self.sleep = sleep

    async def collect(self, request: ChatRequest = REQUEST) -> list[StreamEvent]:
        return [event async for event in self.client.stream(request)]

    async def failure(self, request: ChatRequest = REQUEST) -> tuple[LLMError, list[StreamEvent]]:
        """The error the stream ends with, and the events yielded before it."""
        events: list[StreamEvent] = []
        with pytest.raises(LLMError) as info:
            async for event in self.client.stream(request):
                events.append(event)
        return info.value, events


Connect = Callable[..., Harness]


@pytest.fixture
async def connect() -> AsyncIterator[Connect]:
    http_clients: list[httpx.AsyncClient] = []

    def make(
        *replies: Reply,
        api_key: str = API_KEY,
        base_url: str = BASE_URL,
        max_retries: int = 2,
    ) -> Harness:
        server = Server(*replies)
        http = httpx.AsyncClient(transport=httpx.MockTransport(server))
        http_clients.append(http)
        fake_sleep = FakeSleep()
        client = ChatClient(
            http, base_url=base_url, api_key=api_key, max_retries=max_retries, sleep=fake_sleep
        )
        return Harness(server, client, fake_sleep)

    yield make
    for http in http_clients:
        await http.aclose()


def texts(events: Iterable[StreamEvent]) -> list[str]:
    return [e.text for e in events if e.text]


# --- parsing the stream -----------------------------------------------------------------------


async def test_openai_framed_stream_yields_deltas_in_order_then_finish_then_usage(
    connect: Connect,
) -> None:
    harness = connect(ok("Hel", "lo", ", world"))

    events = await harness.collect()

    assert events == [
        StreamEvent(text="Hel"),
        StreamEvent(text="lo"),
        StreamEvent(text=", world"),
        StreamEvent(finish_reason="stop"),
        StreamEvent(usage=Usage(prompt_tokens=9, completion_tokens=2)),
    ]
    assert harness.server.calls == 1
    assert harness.sleep.delays == []


async def test_a_server_that_omits_usage_yields_no_usage_and_no_error(connect: Connect) -> None:
    harness = connect(sse(reply_text("Hi", " there", usage=None)))

    events = await harness.collect()

    assert texts(events) == ["Hi", " there"]
    assert [e.finish_reason for e in events if e.finish_reason] == ["stop"]
    assert all(e.usage is None for e in events)


async def test_finish_reason_length_is_reported(connect: Connect) -> None:
    body = sse_body(chunk(content="cut"), chunk(finish="length"))
    harness = connect(sse(body))

    events = await harness.collect()

    assert events == [StreamEvent(text="cut"), StreamEvent(finish_reason="length")]


async def test_empty_deltas_and_keep_alive_comments_are_skipped(connect: Connect) -> None:
    body = b"".join(
        [
            b": keep-alive\n\n",
            sse_body(chunk(role="assistant", content=""), done=False),
            b": keep-alive\n\n",
            sse_body(chunk(content=""), chunk(), chunk(content=None), done=False),
            b"data: \n\n",
            sse_body(chunk(content="A"), done=False),
            b": ping\n\n",
            sse_body(chunk(content="B"), chunk(finish="stop")),
        ]
    )
    harness = connect(sse(body))

    events = await harness.collect()

    assert events == [
        StreamEvent(text="A"),
        StreamEvent(text="B"),
        StreamEvent(finish_reason="stop"),
    ]


@pytest.mark.parametrize("piece_size", [1, 3, 7, 64])
async def test_events_split_across_network_reads_are_reassembled(
    connect: Connect, piece_size: int
) -> None:
    body = reply_text("Привет", ", 世界 ", "🦜!")
    pieces = [body[i : i + piece_size] for i in range(0, len(body), piece_size)]
    harness = connect(streamed(pieces))

    events = await harness.collect()

    assert texts(events) == ["Привет", ", 世界 ", "🦜!"]
    assert events[-1].usage == Usage(9, 2)


async def test_crlf_line_endings_are_accepted(connect: Connect) -> None:
    body = reply_text("a", "b").replace(b"\n", b"\r\n")
    harness = connect(sse(body))

    events = await harness.collect()

    assert texts(events) == ["a", "b"]
    assert events[-1].usage == Usage(9, 2)


async def test_a_stream_with_finish_reason_but_no_done_marker_ends_cleanly(
    connect: Connect,
) -> None:
    harness = connect(sse(sse_body(chunk(content="x"), chunk(finish="stop"), done=False)))

    events = await harness.collect()

    assert events == [StreamEvent(text="x"), StreamEvent(finish_reason="stop")]


async def test_a_stream_with_done_but_no_finish_reason_ends_cleanly(connect: Connect) -> None:
    harness = connect(sse(sse_body(chunk(content="x"))))

    assert await harness.collect() == [StreamEvent(text="x")]


# --- the request ------------------------------------------------------------------------------


async def test_request_body_is_the_exact_openai_streaming_shape(connect: Connect) -> None:
    harness = connect(ok("x"))
    request = ChatRequest(
        model="gpt-4o-mini",
        messages=(ChatMessage("system", "Be brief."), ChatMessage("user", "Hi 👋")),
        max_tokens=64,
        sampling=Sampling(temperature=0.0, top_p=None, seed=7, stop=("END",)),
        user="u-3f2a",
    )

    await harness.collect(request)

    sent = harness.server.requests[0]
    assert sent.method == "POST"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi 👋"},
        ],
        "max_tokens": 64,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.0,
        "seed": 7,
        "stop": ["END"],
        "user": "u-3f2a",
    }


async def test_request_without_sampling_or_user_sends_only_the_required_fields(
    connect: Connect,
) -> None:
    harness = connect(ok("x"))

    await harness.collect()

    assert json.loads(harness.server.requests[0].content) == {
        "model": MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 64,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def test_all_sampling_parameters_are_sent_when_set(connect: Connect) -> None:
    harness = connect(ok("x"))
    sampling = Sampling(
        temperature=0.7, top_p=0.9, presence_penalty=-0.5, frequency_penalty=1.5, seed=0
    )

    await harness.collect(ChatRequest(MODEL, REQUEST.messages, 32, sampling=sampling))

    body = json.loads(harness.server.requests[0].content)
    assert {k: body[k] for k in body if k not in ("model", "messages", "stream_options")} == {
        "max_tokens": 32,
        "stream": True,
        "temperature": 0.7,
        "top_p": 0.9,
        "presence_penalty": -0.5,
        "frequency_penalty": 1.5,
        "seed": 0,
    }


async def test_bearer_header_is_sent_when_an_api_key_is_given(connect: Connect) -> None:
    harness = connect(ok("x"))

    await harness.collect()

    headers = harness.server.requests[0].headers
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert "text/event-stream" in headers["accept"]


async def test_no_authorization_header_without_an_api_key(connect: Connect) -> None:
    harness = connect(ok("x"), api_key="")

    await harness.collect()

    assert "authorization" not in harness.server.requests[0].headers


@pytest.mark.parametrize(
    "base_url",
    ["http://llm.test/v1", "http://llm.test/v1/", "http://llm.test/v1//"],
)
async def test_url_is_base_url_plus_chat_completions_with_trailing_slash_tolerated(
    connect: Connect, base_url: str
) -> None:
    harness = connect(ok("x"), base_url=base_url)

    await harness.collect()

    assert str(harness.server.requests[0].url) == "http://llm.test/v1/chat/completions"


# --- HTTP errors ------------------------------------------------------------------------------


def openai_error(message: str, type_: str, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": None, "code": code}}


@pytest.mark.parametrize(
    ("reply", "kind", "status_code", "code", "message"),
    [
        (
            status(401, openai_error("Incorrect API key provided.", "auth", "invalid_api_key")),
            LLMAuthError,
            401,
            "invalid_api_key",
            "Incorrect API key provided.",
        ),
        (
            status(403, openai_error("Project lacks access.", "permission", None)),
            LLMAuthError,
            403,
            "permission",
            "Project lacks access.",
        ),
        (
            status(404, openai_error("The model `x` does not exist.", "invalid_request", None)),
            LLMNotFoundError,
            404,
            "invalid_request",
            "The model `x` does not exist.",
        ),
        (
            status(
                400,
                openai_error(
                    "This model's maximum context length is 128000 tokens.",
                    "invalid_request_error",
                    "context_length_exceeded",
                ),
            ),
            ContextLengthError,
            400,
            "context_length_exceeded",
            "This model's maximum context length is 128000 tokens.",
        ),
        (
            status(400, openai_error("Invalid 'temperature'.", "invalid_request_error", None)),
            LLMBadRequestError,
            400,
            "invalid_request_error",
            "Invalid 'temperature'.",
        ),
        (
            status(422, {"detail": "messages: field required"}),
            LLMBadRequestError,
            422,
            None,
            "messages: field required",
        ),
        (
            status(400, {"error": "max_tokens is too large"}),
            LLMBadRequestError,
            400,
            None,
            "max_tokens is too large",
        ),
        (
            status(500, openai_error("The server had an error.", "server_error", None)),
            LLMServerError,
            500,
            "server_error",
            "The server had an error.",
        ),
        (
            status(503, raw=b"<html><body>Service Unavailable</body></html>"),
            LLMServerError,
            503,
            None,
            "<html><body>Service Unavailable</body></html>",
        ),
        (status(502, raw=b""), LLMServerError, 502, None, "no details"),
    ],
    ids=[
        "401",
        "403",
        "404",
        "400-context-length",
        "400",
        "422-detail",
        "400-error-string",
        "500",
        "503-html",
        "502-empty",
    ],
)
async def test_http_error_answers_map_to_typed_errors_carrying_status_code_and_message(
    connect: Connect,
    reply: Reply,
    kind: type[LLMStatusError],
    status_code: int,
    code: str | None,
    message: str,
) -> None:
    harness = connect(reply, max_retries=0)

    error, events = await harness.failure()

    assert type(error) is kind
    assert isinstance(error, LLMStatusError)
    assert error.status == status_code
    assert error.code == code
    assert str(error) == f"HTTP {status_code}: {message}"
    assert events == []


async def test_a_400_mentioning_the_context_length_without_a_code_is_a_context_length_error(
    connect: Connect,
) -> None:
    body = {"error": {"message": "This model's maximum context length is 8192 tokens."}}
    harness = connect(status(400, body))

    error, _ = await harness.failure()

    assert isinstance(error, ContextLengthError)
    assert harness.server.calls == 1


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "7"}, 7.0),
        ({"Retry-After": "1.5"}, 1.5),
        ({"retry-after-ms": "250"}, 0.25),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"retry-after-ms": "soon", "Retry-After": "9"}, 9.0),
        ({"Retry-After": "-3"}, 0.0),
        ({"Retry-After": "whenever"}, None),
        ({}, None),
    ],
)
async def test_rate_limit_error_carries_retry_after_from_the_headers(
    connect: Connect, headers: dict[str, str], expected: float | None
) -> None:
    body = openai_error("Rate limit reached.", "requests", "rate_limit_exceeded")
    harness = connect(status(429, body, headers), max_retries=0)

    error, _ = await harness.failure()

    assert isinstance(error, LLMRateLimitError)
    assert error.status == 429
    assert error.code == "rate_limit_exceeded"
    assert error.retry_after == expected


def freeze_clock(monkeypatch: pytest.MonkeyPatch, now: datetime) -> None:
    """errors_map's wall clock (only its module reference, nothing global)."""
    monkeypatch.setattr(errors_map, "time", types.SimpleNamespace(time=now.timestamp))


async def test_retry_after_as_an_http_date_becomes_seconds_from_now(
    connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    freeze_clock(monkeypatch, now)
    when = email.utils.format_datetime(now + timedelta(seconds=12), usegmt=True)
    harness = connect(status(429, {"error": "slow down"}, {"Retry-After": when}), max_retries=0)

    error, _ = await harness.failure()

    assert isinstance(error, LLMRateLimitError)
    assert error.retry_after == 12.0


async def test_retry_after_as_a_past_http_date_is_zero(
    connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    freeze_clock(monkeypatch, now)
    when = email.utils.format_datetime(now - timedelta(minutes=5), usegmt=True)
    harness = connect(status(429, {"error": "slow down"}, {"Retry-After": when}), max_retries=0)

    error, _ = await harness.failure()

    assert isinstance(error, LLMRateLimitError)
    assert error.retry_after == 0.0


# --- retries ----------------------------------------------------------------------------------


async def test_rate_limit_is_retried_with_retry_after_before_the_first_token(
    connect: Connect,
) -> None:
    harness = connect(status(429, {"error": "slow down"}, {"Retry-After": "2"}), ok("fine"))

    events = await harness.collect()

    assert texts(events) == ["fine"]
    assert harness.server.calls == 2
    assert harness.sleep.delays == [2.0]


async def test_retry_after_ms_is_the_delay_passed_to_sleep(connect: Connect) -> None:
    harness = connect(status(429, {"error": "x"}, {"retry-after-ms": "1200"}), ok("fine"))

    await harness.collect()

    assert harness.sleep.delays == [1.2]


async def test_http_date_retry_after_is_the_delay_passed_to_sleep(
    connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
    freeze_clock(monkeypatch, now)
    when = email.utils.format_datetime(now + timedelta(seconds=5), usegmt=True)
    harness = connect(status(429, {"error": "x"}, {"Retry-After": when}), ok("fine"))

    await harness.collect()

    assert harness.sleep.delays == [5.0]


async def test_server_errors_are_retried_with_increasing_backoff(connect: Connect) -> None:
    harness = connect(status(500, {"error": "boom"}), status(503, raw=b"busy"), ok("fine"))

    events = await harness.collect()

    assert texts(events) == ["fine"]
    assert harness.server.calls == 3
    first, second = harness.sleep.delays
    # backoff 0.5 s doubling, with ±20 % jitter: [0.4, 0.6] then [0.8, 1.2]
    assert 0.4 <= first <= 0.6
    assert 0.8 <= second <= 1.2
    assert second > first


async def test_rate_limit_without_retry_after_falls_back_to_backoff(connect: Connect) -> None:
    harness = connect(status(429, {"error": "slow down"}), ok("fine"))

    await harness.collect()

    (delay,) = harness.sleep.delays
    assert 0.4 <= delay <= 0.6


async def test_more_failures_than_max_retries_raise_the_last_error(connect: Connect) -> None:
    harness = connect(status(500, {"error": "boom"}), max_retries=2)

    error, events = await harness.failure()

    assert isinstance(error, LLMServerError)
    assert events == []
    assert harness.server.calls == 3  # the first try and two retries
    assert len(harness.sleep.delays) == 2


async def test_max_retries_zero_means_a_single_attempt(connect: Connect) -> None:
    harness = connect(status(503, raw=b"busy"), ok("never"), max_retries=0)

    error, _ = await harness.failure()

    assert isinstance(error, LLMServerError)
    assert harness.server.calls == 1
    assert harness.sleep.delays == []


async def test_a_retry_after_above_the_cap_is_not_waited_for(connect: Connect) -> None:
    too_long = str(int(MAX_RETRY_WAIT) + 1)
    harness = connect(status(429, {"error": "x"}, {"Retry-After": too_long}), ok("fine"))

    error, _ = await harness.failure()

    assert isinstance(error, LLMRateLimitError)
    assert error.retry_after == MAX_RETRY_WAIT + 1
    assert harness.server.calls == 1
    assert harness.sleep.delays == []


async def test_a_retry_after_equal_to_the_cap_is_waited_for(connect: Connect) -> None:
    at_cap = str(int(MAX_RETRY_WAIT))
    harness = connect(status(429, {"error": "x"}, {"Retry-After": at_cap}), ok("fine"))

    await harness.collect()

    assert harness.sleep.delays == [MAX_RETRY_WAIT]


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        (status(401, openai_error("bad key", "auth", "invalid_api_key")), LLMAuthError),
        (status(403, {"error": "forbidden"}), LLMAuthError),
        (status(404, {"error": "no such model"}), LLMNotFoundError),
        (status(400, {"error": "bad"}), LLMBadRequestError),
        (status(400, openai_error("long", "x", "context_length_exceeded")), ContextLengthError),
    ],
    ids=["401", "403", "404", "400", "400-context-length"],
)
async def test_client_errors_are_never_retried(
    connect: Connect, reply: Reply, kind: type[LLMError]
) -> None:
    harness = connect(reply, ok("never"))

    error, _ = await harness.failure()

    assert type(error) is kind
    assert harness.server.calls == 1
    assert harness.sleep.delays == []


async def test_connect_error_is_a_connection_error_and_is_retried(connect: Connect) -> None:
    refused = fail(lambda r: httpx.ConnectError("connection refused", request=r))
    harness = connect(refused, ok("fine"))

    events = await harness.collect()

    assert texts(events) == ["fine"]
    assert harness.server.calls == 2
    assert len(harness.sleep.delays) == 1


async def test_persistent_connect_errors_raise_a_connection_error(connect: Connect) -> None:
    refused = fail(lambda r: httpx.ConnectError("connection refused", request=r))
    harness = connect(refused)

    error, _ = await harness.failure()

    assert isinstance(error, LLMConnectionError)
    assert "ConnectError" in str(error)
    assert harness.server.calls == 3


async def test_read_timeout_is_a_timeout_error_and_is_not_retried(connect: Connect) -> None:
    harness = connect(fail(lambda r: httpx.ReadTimeout("timed out", request=r)), ok("never"))

    error, _ = await harness.failure()

    assert isinstance(error, LLMTimeoutError)
    assert harness.server.calls == 1
    assert harness.sleep.delays == []


@pytest.mark.parametrize(
    "broken",
    [
        httpx.RemoteProtocolError("peer closed connection without sending complete message body"),
        httpx.ReadError("connection reset by peer"),
    ],
    ids=["RemoteProtocolError", "ReadError"],
)
async def test_a_stream_cut_after_text_was_yielded_raises_and_is_not_retried(
    connect: Connect, broken: httpx.HTTPError
) -> None:
    pieces = [sse_body(chunk(role="assistant", content=""), chunk(content="Hal"), done=False)]
    harness = connect(streamed(pieces, broken), ok("never"))

    error, events = await harness.failure()

    assert isinstance(error, LLMConnectionError)
    assert texts(events) == ["Hal"]
    assert harness.server.calls == 1
    assert harness.sleep.delays == []


async def test_a_stream_cut_after_text_while_timing_out_raises_a_timeout_error(
    connect: Connect,
) -> None:
    pieces = [sse_body(chunk(content="Hal"), done=False)]
    harness = connect(streamed(pieces, httpx.ReadTimeout("timed out")), ok("never"))

    error, events = await harness.failure()

    assert isinstance(error, LLMTimeoutError)
    assert texts(events) == ["Hal"]
    assert harness.server.calls == 1


async def test_a_stream_cut_before_any_text_is_retried(connect: Connect) -> None:
    pieces = [sse_body(chunk(role="assistant", content=""), done=False)]
    harness = connect(streamed(pieces, httpx.ReadError("reset")), ok("fine"))

    events = await harness.collect()

    assert texts(events) == ["fine"]
    assert harness.server.calls == 2


async def test_a_stream_ending_cleanly_without_finish_or_done_after_text_is_an_error(
    connect: Connect,
) -> None:
    body = sse_body(chunk(role="assistant", content=""), chunk(content="Hal"), done=False)
    harness = connect(sse(body), ok("never"))

    error, events = await harness.failure()

    assert isinstance(error, LLMConnectionError)
    assert texts(events) == ["Hal"]
    assert harness.server.calls == 1


async def test_an_empty_stream_without_finish_or_done_is_retried_then_raised(
    connect: Connect,
) -> None:
    harness = connect(sse(b""))

    error, events = await harness.failure()

    assert isinstance(error, LLMConnectionError)
    assert events == []
    assert harness.server.calls == 3


async def test_malformed_json_in_a_data_line_is_a_protocol_error(connect: Connect) -> None:
    body = sse_body(chunk(content="ok"), '{"choices": [', done=True)
    harness = connect(sse(body), ok("never"))

    error, events = await harness.failure()

    assert isinstance(error, LLMProtocolError)
    assert texts(events) == ["ok"]
    assert harness.server.calls == 1


async def test_malformed_json_before_any_text_is_not_retried(connect: Connect) -> None:
    harness = connect(sse(b"data: not json\n\n"), ok("never"))

    error, _ = await harness.failure()

    assert isinstance(error, LLMProtocolError)
    assert harness.server.calls == 1


async def test_a_200_json_answer_instead_of_an_event_stream_is_a_protocol_error(
    connect: Connect,
) -> None:
    completion = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
    }
    harness = connect(lambda r: httpx.Response(200, json=completion), ok("never"))

    error, events = await harness.failure()

    assert isinstance(error, LLMProtocolError)
    assert events == []
    assert harness.server.calls == 1


async def test_an_error_object_inside_the_stream_raises_an_llm_error(connect: Connect) -> None:
    err = {"error": {"message": "Upstream provider overloaded", "code": "overloaded"}}
    body = sse_body(chunk(content="partial"), err)
    harness = connect(sse(body), ok("never"))

    error, events = await harness.failure()

    assert isinstance(error, LLMError)
    assert "Upstream provider overloaded" in str(error)
    assert texts(events) == ["partial"]
    assert harness.server.calls == 1


@pytest.mark.parametrize(
    ("payload", "kind"),
    [
        ({"error": "upstream died"}, LLMServerError),
        ({"error": {"message": "too long", "code": "context_length_exceeded"}}, ContextLengthError),
        ({"error": {"message": "slow down", "code": 429}}, LLMRateLimitError),
    ],
    ids=["string", "context-length", "numeric-429"],
)
async def test_errors_inside_the_stream_are_typed_like_http_errors(
    connect: Connect, payload: dict[str, Any], kind: type[LLMError]
) -> None:
    harness = connect(sse(sse_body(payload)), max_retries=0)

    error, events = await harness.failure()

    assert type(error) is kind
    assert events == []


async def test_an_api_key_echoed_by_the_server_is_redacted(connect: Connect) -> None:
    harness = connect(status(400, openai_error(f"bad request for key {API_KEY}", "x", None)))

    error, _ = await harness.failure()

    assert API_KEY not in str(error)
    assert "bad request for key ***" in str(error)


# --- the API key stays secret -----------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [
        status(401, openai_error("Incorrect API key provided: sk-test-***RET.", "auth", None)),
        status(429, {"error": "slow"}, {"Retry-After": "99"}),
        status(500, raw=b"Internal Server Error"),
        fail(lambda r: httpx.ConnectError("All connection attempts failed", request=r)),
        fail(lambda r: httpx.ReadTimeout("timed out", request=r)),
        streamed([sse_body(chunk(content="x"), done=False)], httpx.ReadError("reset")),
        sse(b"data: {oops\n\n"),
        lambda r: httpx.Response(200, json={"ok": True}),
    ],
    ids=["401", "429", "500", "connect", "timeout", "cut", "bad-json", "not-sse"],
)
async def test_the_api_key_never_appears_in_an_error(connect: Connect, reply: Reply) -> None:
    harness = connect(reply, max_retries=1)

    error, _ = await harness.failure()

    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None:
        chain.append(current)
        current = current.__cause__ or current.__context__
    for exc in chain:
        assert API_KEY not in str(exc)
        assert API_KEY not in repr(exc)
        assert API_KEY not in repr(exc.args)
    assert harness.server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"


# --- parse_chunk ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"choices": []}, None),
        ({}, None),
        ({"choices": None, "usage": None}, None),
        ({"choices": [{"delta": {"content": None}, "finish_reason": None}]}, None),
        ({"choices": [{"delta": None, "finish_reason": None}]}, None),
        ({"choices": [{"delta": {"role": "assistant"}}]}, None),
        ({"choices": [{"delta": {"content": "x"}}]}, StreamEvent(text="x")),
        (
            {"choices": [{"delta": {"content": "end"}, "finish_reason": "stop"}]},
            StreamEvent(text="end", finish_reason="stop"),
        ),
        (
            {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 34}},
            StreamEvent(usage=Usage(12, 34)),
        ),
        (
            {"choices": [], "usage": {"prompt_tokens": None, "completion_tokens": 5}},
            StreamEvent(usage=Usage(0, 5)),
        ),
        (
            {
                "choices": [{"delta": {}, "finish_reason": "length"}],
                "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
            },
            StreamEvent(finish_reason="length", usage=Usage(1, 2)),
        ),
        ({"choices": ["junk"]}, None),
    ],
)
def test_parse_chunk_edge_cases(payload: dict[str, Any], expected: StreamEvent | None) -> None:
    assert parse_chunk(json.dumps(payload)) == expected


@pytest.mark.parametrize("data", ["not json", '{"a":', "[1, 2]", '"text"', "42", "null"])
def test_parse_chunk_rejects_what_is_not_a_chunk_object(data: str) -> None:
    with pytest.raises(LLMProtocolError):
        parse_chunk(data)


def test_parse_chunk_raises_a_server_error_for_an_error_object() -> None:
    payload = {"error": {"message": "model overloaded", "code": "overloaded"}}

    with pytest.raises(LLMServerError) as info:
        parse_chunk(json.dumps(payload))

    assert info.value.code == "overloaded"
    assert "model overloaded" in str(info.value)
