"""End-to-end tests of the OpenAI API emulator over real HTTP (httpx + httpx-sse)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from emulators.openai_api import OpenAIEmulator, Reply
from emulators.openai_tokens import count_tokens

KEY = "sk-test-key"
MODEL = "gpt-4o-mini"


@pytest.fixture
async def emulator() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator(KEY) as emu:
        yield emu


@pytest.fixture
async def client(emulator: OpenAIEmulator) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers, timeout=5) as c:
        yield c


def chat_body(text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": MODEL, "messages": [{"role": "user", "content": text}]}
    body.update(extra)
    return body


def stream_body(text: str = "Hello there", **extra: Any) -> dict[str, Any]:
    return chat_body(text, stream=True, stream_options={"include_usage": True}, **extra)


async def raw_events(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> list[bytes]:
    """POST and split the raw SSE body into events (checking the framing on the way)."""
    response = await client.post(path, json=body)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    raw = response.content
    assert raw.endswith(b"\n\n")
    events = raw[:-2].split(b"\n\n")
    assert all(b"\n" not in e for e in events)
    return events


def data_of(events: list[bytes]) -> list[Any]:
    """Decode ``data:`` events (keep-alive comments dropped, ``[DONE]`` kept as a string)."""
    out: list[Any] = []
    for event in events:
        if event.startswith(b":"):
            continue
        assert event.startswith(b"data: ")
        payload = event[len(b"data: ") :]
        out.append("[DONE]" if payload == b"[DONE]" else json.loads(payload))
    return out


def content_of(chunks: list[Any]) -> str:
    return "".join(
        c["choices"][0]["delta"].get("content") or ""
        for c in chunks
        if isinstance(c, dict) and c["choices"]
    )


async def sse_deltas(client: httpx.AsyncClient, body: dict[str, Any], into: list[str]) -> None:
    """Read a chat stream with httpx-sse, appending content deltas to ``into``."""
    async with aconnect_sse(client, "POST", "/chat/completions", json=body) as source:
        async for event in source.aiter_sse():
            if event.data == "[DONE]":
                into.append("[DONE]")
                continue
            delta = event.json()["choices"][0]["delta"] if event.json()["choices"] else {}
            if delta.get("content"):
                into.append(delta["content"])


async def _wait_until(predicate: Callable[[], bool], within: float = 2.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


# --- happy path ---------------------------------------------------------------------------------


async def test_sse_framing_role_first_usage_before_done(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    body = stream_body("Hello there, how are you today?")
    chunks = data_of(await raw_events(client, "/chat/completions", body))

    assert chunks[-1] == "[DONE]"
    first, *middle, finish, usage_chunk, _ = chunks
    assert first["choices"][0]["delta"] == {"role": "assistant", "content": "", "refusal": None}
    assert first["object"] == "chat.completion.chunk"
    assert first["id"].startswith("chatcmpl-")
    assert first["system_fingerprint"] == "fp_emulator"
    assert all(set(c["choices"][0]["delta"]) == {"content"} for c in middle)
    assert all(len(c["choices"][0]["delta"]["content"]) <= 8 for c in middle)
    assert finish["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert all(c["usage"] is None for c in chunks[:-2])
    assert usage_chunk["choices"] == []
    prompt = emulator.count_prompt_tokens(body["messages"])
    text = "Echo: Hello there, how are you today?"
    assert content_of(chunks) == text
    assert usage_chunk["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": count_tokens(text),
        "total_tokens": prompt + count_tokens(text),
    }
    assert len({c["id"] for c in chunks[:-1]}) == 1


async def test_default_echo_with_httpx_sse(client: httpx.AsyncClient) -> None:
    got: list[str] = []
    await sse_deltas(client, stream_body("ping ✓ 🎉"), got)
    assert got[-1] == "[DONE]"
    assert "".join(got[:-1]) == "Echo: ping ✓ 🎉"


async def test_non_stream_shape(emulator: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    emulator.enqueue("scripted answer")
    body = chat_body()
    response = await client.post("/chat/completions", json=body)
    data = response.json()
    assert data["object"] == "chat.completion"
    assert data["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "scripted answer", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ]
    prompt = emulator.count_prompt_tokens(body["messages"])
    assert data["usage"]["prompt_tokens"] == prompt
    assert data["usage"]["total_tokens"] == prompt + count_tokens("scripted answer")


async def test_enqueue_order_then_responder_then_echo(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    emulator.enqueue("first", Reply(text="second"))

    async def answer(text: str) -> str:
        r = await client.post("/chat/completions", json=chat_body(text))
        return str(r.json()["choices"][0]["message"]["content"])

    assert await answer("a") == "first"
    assert await answer("b") == "second"
    assert await answer("c") == "Echo: c"
    emulator.responder = lambda body: f"seen {len(body['messages'])}"
    assert await answer("d") == "seen 1"


async def test_usage_matches_count_prompt_tokens(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "name": "alice", "content": "Hi! Tell me a joke, please."},
        {"role": "assistant", "content": "No."},
        {"role": "user", "content": [{"type": "text", "text": "Why not?"}]},
    ]
    emulator.enqueue(Reply(text="Because.", usage=None))
    body = {
        "model": MODEL,
        "messages": messages,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = data_of(await raw_events(client, "/chat/completions", body))
    usage = chunks[-2]["usage"]
    expected_prompt = emulator.count_prompt_tokens(messages)
    assert usage["prompt_tokens"] == expected_prompt
    assert usage["completion_tokens"] == count_tokens("Because.")
    # cookbook arithmetic: 4 messages * 3 + priming 3 + name 1 + the string tokens
    strings = [
        "system",
        "You are terse.",
        "user",
        "alice",
        "Hi! Tell me a joke, please.",
        "assistant",
        "No.",
        "user",
        "Why not?",
    ]
    assert expected_prompt == 4 * 3 + 3 + 1 + sum(count_tokens(s) for s in strings)


async def test_usage_override(emulator: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    emulator.enqueue(Reply(text="x", usage={"prompt_tokens": 7, "completion_tokens": 2}))
    data = (await client.post("/chat/completions", json=chat_body())).json()
    assert data["usage"] == {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}


async def test_omit_usage(emulator: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    emulator.enqueue(Reply(text="no usage here", omit_usage=True))
    chunks = data_of(await raw_events(client, "/chat/completions", stream_body()))
    assert chunks[-1] == "[DONE]"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert all("usage" not in c for c in chunks[:-1])


async def test_max_tokens_sets_length(emulator: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    text = "one two three four five six seven eight"
    emulator.enqueue(text, text)
    data = (await client.post("/chat/completions", json=chat_body(max_tokens=3))).json()
    assert data["choices"][0]["message"]["content"] == "one two three"
    assert data["choices"][0]["finish_reason"] == "length"
    assert data["usage"]["completion_tokens"] == 3

    chunks = data_of(
        await raw_events(client, "/chat/completions", stream_body(max_completion_tokens=2))
    )
    assert content_of(chunks) == "one two"
    assert chunks[-3]["choices"][0]["finish_reason"] == "length"


async def test_stop_sequences(emulator: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    emulator.enqueue("alpha beta END gamma", "x|y", Reply(text="abc", finish_reason="stop"))
    data = (await client.post("/chat/completions", json=chat_body(stop=["END", "beta"]))).json()
    assert data["choices"][0]["message"]["content"] == "alpha "
    assert data["choices"][0]["finish_reason"] == "stop"
    data = (await client.post("/chat/completions", json=chat_body(stop="|"))).json()
    assert data["choices"][0]["message"]["content"] == "x"
    data = (await client.post("/chat/completions", json=chat_body(stop="zzz"))).json()
    assert data["choices"][0]["message"]["content"] == "abc"


async def test_models_endpoint(client: httpx.AsyncClient) -> None:
    data = (await client.get("/models")).json()
    assert data["object"] == "list"
    assert [m["id"] for m in data["data"]] == ["gpt-4o-mini", "gpt-4o", "test-model"]
    assert all(m["object"] == "model" and m["owned_by"] == "emulator" for m in data["data"])


# --- errors -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "err_type", "code", "message_start", "retry_after"),
    [
        (
            Reply(status=429, retry_after=2),
            "requests",
            "rate_limit_exceeded",
            "Rate limit reached for requests",
            "2",
        ),
        (
            Reply(status=503, retry_after=1.5),
            "server_error",
            None,
            "The engine is currently overloaded",
            "1.5",
        ),
        (Reply(status=500), "server_error", None, "The server had an error", None),
        (
            Reply(status=401),
            "invalid_request_error",
            "invalid_api_key",
            "Incorrect API key provided",
            None,
        ),
        (
            Reply(status=400, error_message="nope", error_code="bad"),
            "invalid_request_error",
            "bad",
            "nope",
            None,
        ),
    ],
)
async def test_scripted_error_status(
    emulator: OpenAIEmulator,
    client: httpx.AsyncClient,
    reply: Reply,
    err_type: str,
    code: str | None,
    message_start: str,
    retry_after: str | None,
) -> None:
    emulator.enqueue(reply, "after the error")
    response = await client.post("/chat/completions", json=stream_body())
    assert response.status_code == reply.status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["message"].startswith(message_start)
    assert (error["type"], error["code"], error["param"]) == (err_type, code, None)
    assert response.headers.get("retry-after") == retry_after
    chunks = data_of(await raw_events(client, "/chat/completions", stream_body()))
    assert content_of(chunks) == "after the error"


async def test_unknown_model_404_keeps_queue(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    emulator.enqueue("kept")
    response = await client.post("/chat/completions", json=chat_body(model="gpt-9"))
    assert response.status_code == 404
    assert response.json() == {
        "error": {
            "message": "The model `gpt-9` does not exist or you do not have access to it.",
            "type": "invalid_request_error",
            "param": None,
            "code": "model_not_found",
        }
    }
    data = (await client.post("/chat/completions", json=chat_body())).json()
    assert data["choices"][0]["message"]["content"] == "kept"


async def test_scripted_404_names_the_model(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    emulator.enqueue(Reply(status=404))
    response = await client.post("/chat/completions", json=chat_body())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert f"`{MODEL}`" in response.json()["error"]["message"]


async def test_unknown_path_and_method(client: httpx.AsyncClient) -> None:
    missing = await client.post("/embeddingz", json={})
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Invalid URL (POST /v1/embeddingz)"
    wrong = await client.get("/chat/completions")
    assert wrong.status_code == 405
    assert wrong.json()["error"]["type"] == "invalid_request_error"


async def test_scripted_status_beats_model_check(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    emulator.enqueue(Reply(status=503))
    response = await client.post("/chat/completions", json=chat_body(model="gpt-9"))
    assert response.status_code == 503


async def test_wrong_and_missing_key_401(emulator: OpenAIEmulator) -> None:
    emulator.enqueue("kept")
    async with httpx.AsyncClient(base_url=emulator.base_url) as anon:
        bad = await anon.post(
            "/chat/completions", json=chat_body(), headers={"Authorization": "Bearer sk-wrong"}
        )
        missing = await anon.get("/models")
        good = await anon.post(
            "/chat/completions", json=chat_body(), headers={"Authorization": f"Bearer {KEY}"}
        )
    assert bad.status_code == 401
    assert bad.json() == {
        "error": {
            "message": "Incorrect API key provided: sk-wr***ng. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    assert missing.status_code == 401
    assert missing.json()["error"]["message"].startswith("You didn't provide an API key")
    assert good.json()["choices"][0]["message"]["content"] == "kept"


@pytest.mark.parametrize(
    ("change", "param"),
    [
        ({"model": None}, "model"),
        ({"messages": None}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"temperature": 2.5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": 1.1}, "top_p"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_completion_tokens": 1.5}, "max_completion_tokens"),
        ({"n": 129}, "n"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop"),
        ({"stop": 3}, "stop"),
        ({"presence_penalty": -3}, "presence_penalty"),
        ({"frequency_penalty": "x"}, "frequency_penalty"),
        ({"seed": 1.5}, "seed"),
        ({"logit_bias": [1]}, "logit_bias"),
        ({"user": 42}, "user"),
        ({"stream": "yes"}, "stream"),
        ({"stream_options": {"include_usage": True}}, "stream_options"),
    ],
)
async def test_validation_400(
    emulator: OpenAIEmulator, client: httpx.AsyncClient, change: dict[str, Any], param: str
) -> None:
    emulator.enqueue(Reply(status=500))
    body = {k: v for k, v in {**chat_body(), **change}.items() if v is not None}
    response = await client.post("/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["type"], error["param"], error["code"]) == ("invalid_request_error", param, None)
    assert error["message"]
    # the scripted fault was not consumed by the invalid request
    assert (await client.post("/chat/completions", json=chat_body())).status_code == 500


async def test_invalid_json_body(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/chat/completions", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert "could not parse the JSON body" in response.json()["error"]["message"]


async def test_context_length_exceeded(emulator: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    emulator.context_windows["test-model"] = 50
    messages = [{"role": "user", "content": "word " * 30}]
    prompt = emulator.count_prompt_tokens(messages)
    body = {"model": "test-model", "messages": messages, "max_tokens": 20}
    response = await client.post("/chat/completions", json=body)
    assert response.status_code == 400
    assert response.json() == {
        "error": {
            "message": f"This model's maximum context length is 50 tokens. However, you requested "
            f"{prompt + 20} tokens ({prompt} in the messages, 20 in the completion). "
            "Please reduce the length of the messages or completion.",
            "type": "invalid_request_error",
            "param": "messages",
            "code": "context_length_exceeded",
        }
    }
    body["model"] = MODEL  # default 128k window
    assert (await client.post("/chat/completions", json=body)).status_code == 200


# --- stream faults ------------------------------------------------------------------------------


async def test_cut_after_breaks_stream(emulator: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    emulator.enqueue(Reply(text="abcdefghijklmnopqrstuvwxyz", chunk_chars=4, cut_after=3))
    got: list[str] = []
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await sse_deltas(client, stream_body(), got)
    assert got == ["abcd", "efgh", "ijkl"]


async def test_non_stream_faults(emulator: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    emulator.enqueue(Reply(text="half of me", cut_after=1), Reply(malformed_after=0))
    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        await client.post("/chat/completions", json=chat_body())
    response = await client.post("/chat/completions", json=chat_body())
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


async def test_hang_after_then_client_read_timeout(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    emulator.enqueue(Reply(text="abcdefghij", chunk_chars=2, hang_after=2))
    got: list[str] = []
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        async with httpx.AsyncClient(
            base_url=emulator.base_url,
            headers={"Authorization": f"Bearer {KEY}"},
            timeout=httpx.Timeout(5, read=0.3),
        ) as short:
            await sse_deltas(short, stream_body(), got)
    assert time.monotonic() - started < 2
    assert got == ["ab", "cd"]
    await _wait_until(lambda: emulator.open_streams == 0)


async def test_hang_before_headers(emulator: OpenAIEmulator) -> None:
    emulator.enqueue(Reply(text="never", hang_before_headers=True))
    async with httpx.AsyncClient(
        base_url=emulator.base_url,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=httpx.Timeout(5, read=0.3),
    ) as short:
        with pytest.raises(httpx.ReadTimeout):
            await short.post("/chat/completions", json=stream_body())
    await _wait_until(lambda: emulator.open_streams == 0)


async def test_malformed_event(emulator: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    emulator.enqueue(Reply(text="abcdef", chunk_chars=3, malformed_after=1))
    events = await raw_events(client, "/chat/completions", stream_body())
    assert events[-1] == b'data: {"choices": ['
    assert b"data: [DONE]" not in events
    with pytest.raises(json.JSONDecodeError):
        data_of(events)
    assert content_of(data_of(events[:-1])) == "abc"


async def test_keepalive_comments(emulator: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    reply = Reply(text="keep me alive", keepalive_comments=True)
    emulator.enqueue(reply, reply)
    events = await raw_events(client, "/chat/completions", stream_body())
    assert events.count(b": keep-alive") == 2
    assert content_of(data_of(events)) == "keep me alive"
    got: list[str] = []
    await sse_deltas(client, stream_body(), got)  # httpx-sse skips the comments
    assert got == ["keep me ", "alive", "[DONE]"]


async def test_delays_are_streamed(emulator: OpenAIEmulator, client: httpx.AsyncClient) -> None:
    emulator.enqueue(Reply(text="abcd", chunk_chars=2, first_token_delay=0.3, chunk_delay=0.1))
    arrivals: list[float] = []
    started = time.monotonic()
    async with aconnect_sse(client, "POST", "/chat/completions", json=stream_body()) as source:
        async for _ in source.aiter_sse():
            arrivals.append(time.monotonic() - started)
    role, first, second = arrivals[:3]
    # Lower bounds only (a loaded machine only delays): the role chunk came before the
    # first-token delay, which came before the first text, and the chunks were paced.
    assert first - role >= 0.25
    assert second - first >= 0.08


async def test_client_closing_stream_is_visible(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    emulator.enqueue(Reply(text="x" * 100, chunk_chars=1, chunk_delay=0.02))
    async with aconnect_sse(client, "POST", "/chat/completions", json=stream_body()) as source:
        async for _ in source.aiter_sse():
            assert emulator.open_streams == 1
            break
    await _wait_until(lambda: emulator.open_streams == 0)


# --- legacy completions -------------------------------------------------------------------------


async def test_legacy_completions_stream(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    prompt = "first line\nsecond line"
    body = {
        "model": MODEL,
        "prompt": prompt,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    chunks = data_of(await raw_events(client, "/completions", body))
    assert chunks[-1] == "[DONE]"
    assert chunks[0]["object"] == "text_completion"
    assert chunks[0]["id"].startswith("cmpl-")
    assert set(chunks[0]["choices"][0]) == {"text", "index", "logprobs", "finish_reason"}
    assert "".join(c["choices"][0]["text"] for c in chunks[:-2]) == "Echo: second line"
    assert chunks[-3]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-2]["choices"] == []
    assert chunks[-2]["usage"]["prompt_tokens"] == count_tokens(prompt)

    emulator.enqueue(Reply(text="legacy text"))
    data = (await client.post("/completions", json={"model": MODEL, "prompt": "hi"})).json()
    assert data["choices"][0]["text"] == "legacy text"
    missing = await client.post("/completions", json={"model": MODEL})
    assert missing.json()["error"]["param"] == "prompt"


# --- bookkeeping and lifecycle ------------------------------------------------------------------


async def test_requests_recorded_including_failed(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    await client.post("/chat/completions", json=chat_body("ok"), headers={"X-Trace": "1"})
    await client.post(
        "/chat/completions", json=chat_body("bad key"), headers={"Authorization": "Bearer sk-nope"}
    )
    await client.post("/chat/completions", json={"model": MODEL})
    await client.get("/models")
    await client.get("/nothing-here")
    await emulator.wait_for_requests(5, timeout=1)
    paths = [r.path for r in emulator.requests]
    assert paths == ["/v1/chat/completions"] * 3 + ["/v1/models", "/v1/nothing-here"]
    assert emulator.requests[0].headers["x-trace"] == "1"
    assert emulator.requests[1].headers["authorization"] == "Bearer sk-nope"
    assert [b.get("messages") for b in emulator.chat_requests()] == [
        [{"role": "user", "content": "ok"}],
        [{"role": "user", "content": "bad key"}],
        None,
    ]
    with pytest.raises(TimeoutError):
        await emulator.wait_for_requests(6, timeout=0.1)


async def test_stop_returns_quickly_while_stream_hangs() -> None:
    emulator = OpenAIEmulator(KEY)
    await emulator.start()
    emulator.enqueue(Reply(text="abcdef", hang_after=1), Reply(hang_before_headers=True))
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=emulator.base_url, headers=headers, timeout=5) as c:
        first = asyncio.create_task(sse_deltas(c, stream_body(), []))
        second = asyncio.create_task(c.post("/chat/completions", json=stream_body()))
        await _wait_until(lambda: emulator.open_streams == 2)
        started = time.monotonic()
        await emulator.stop()
        assert time.monotonic() - started < 1.5
        results = await asyncio.gather(first, second, return_exceptions=True)
    assert all(isinstance(r, httpx.TransportError) for r in results)
    assert emulator.open_streams == 0
