"""The OpenAI emulator's Responses API, Azure paths, reasoning-model rules and server quirks,
over real HTTP (so the client tests can trust what it serves)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from emulators.openai_api import OpenAIEmulator, Reply

KEY = "sk-test-key"
VERSION = {"api-version": "2024-10-21"}


@pytest.fixture
async def emulator() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator(KEY) as emu:
        yield emu


@pytest.fixture
async def client(emulator: OpenAIEmulator) -> AsyncIterator[httpx.AsyncClient]:
    root = emulator.base_url.removesuffix("/v1")
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(base_url=root, headers=headers, timeout=5) as c:
        yield c


def typed_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event name, JSON) per SSE event, checking the name matches the payload's type."""
    out = []
    for block in raw.decode().strip().split("\n\n"):
        if block.startswith(":"):
            continue
        name_line, data_line = block.split("\n")
        name, payload = name_line.removeprefix("event: "), json.loads(data_line[6:])
        assert payload["type"] == name
        out.append((name, payload))
    return out


RESPONSES_BODY = {
    "model": "gpt-4o-mini",
    "instructions": "Be brief.",
    "input": [{"role": "user", "content": "Hi there"}],
    "stream": True,
}


async def test_responses_stream_is_typed_events_ending_with_usage(
    client: httpx.AsyncClient,
) -> None:
    emulator_reply = await client.post("/v1/responses", json=RESPONSES_BODY)
    events = typed_events(emulator_reply.content)
    names = [name for name, _ in events]
    assert names[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert names[-2:] == ["response.output_text.done", "response.completed"]
    text = "".join(p["delta"] for n, p in events if n == "response.output_text.delta")
    assert text == "Echo: Hi there"
    final = events[-1][1]["response"]
    assert final["status"] == "completed" and final["usage"]["output_tokens"] > 0
    sequence = [p["sequence_number"] for _, p in events]
    assert sequence == list(range(len(events)))


async def test_responses_limits_failures_and_reasoning(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    emulator.enqueue(
        Reply(text="one two three four", reasoning="hmm"),
        Reply(text="abcdefgh", chunk_chars=4, fail_after=1, error_code="server_error"),
        Reply(text="x", fail_after=0, fail_event="error", error_code="rate_limit_exceeded"),
    )
    limited = typed_events(
        (
            await client.post("/v1/responses", json={**RESPONSES_BODY, "max_output_tokens": 16})
        ).content
    )
    assert ("response.reasoning_summary_text.delta", "hmm") in [
        (n, p.get("delta")) for n, p in limited
    ]
    failed = typed_events((await client.post("/v1/responses", json=RESPONSES_BODY)).content)
    assert [n for n, _ in failed][-2:] == ["response.output_text.delta", "response.failed"]
    assert failed[-1][1]["response"]["error"]["code"] == "server_error"
    error = typed_events((await client.post("/v1/responses", json=RESPONSES_BODY)).content)
    assert [(n, p["code"]) for n, p in error] == [("error", "rate_limit_exceeded")]


async def test_responses_length_and_non_streaming(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    emulator.enqueue(" ".join(["word"] * 40))
    events = typed_events(
        (
            await client.post("/v1/responses", json={**RESPONSES_BODY, "max_output_tokens": 16})
        ).content
    )
    assert events[-1][0] == "response.incomplete"
    details = events[-1][1]["response"]["incomplete_details"]
    assert details == {"reason": "max_output_tokens"}
    whole = (await client.post("/v1/responses", json={**RESPONSES_BODY, "stream": False})).json()
    assert whole["object"] == "response" and whole["status"] == "completed"
    assert whole["output"][0]["content"][0]["text"] == "Echo: Hi there"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({**RESPONSES_BODY, "messages": []}, "messages"),
        ({**RESPONSES_BODY, "max_tokens": 5}, "max_tokens"),
        ({**RESPONSES_BODY, "input": []}, "input"),
        ({**RESPONSES_BODY, "input": [{"role": "system", "content": "x"}]}, "input[0]"),
        ({**RESPONSES_BODY, "max_output_tokens": 2}, "max_output_tokens"),
    ],
)
async def test_responses_requests_are_validated(
    client: httpx.AsyncClient, body: dict[str, Any], param: str
) -> None:
    answer = await client.post("/v1/responses", json=body)
    assert answer.status_code == 400 and answer.json()["error"]["param"] == param


AZURE_CHAT = "/openai/deployments/gpt-4o-mini/chat/completions"
CHAT = {"messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("params", "headers", "status"),
    [
        (VERSION, {"api-key": KEY}, 200),
        ({}, {"api-key": KEY}, 404),
        ({"api-version": "2000-01-01"}, {"api-key": KEY}, 400),
        (VERSION, {"api-key": "wrong"}, 401),
        (VERSION, {}, 401),  # Bearer alone is not Azure's key header
    ],
)
async def test_azure_paths_need_api_version_and_api_key(
    client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str], status: int
) -> None:
    answer = await client.post(AZURE_CHAT, params=params, headers=headers, json=CHAT)
    assert answer.status_code == status
    if status == 200:
        assert answer.json()["choices"][0]["message"]["content"] == "Echo: hi"


async def test_azure_deployments_map_to_models_and_requests_record_the_query(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    emulator.azure_deployments["prod"] = "gpt-4o"
    headers = {"api-key": KEY}
    path = "/openai/deployments/prod/completions"
    answer = await client.post(path, params=VERSION, headers=headers, json={"prompt": "Hi"})
    assert answer.json()["model"] == "gpt-4o"
    missing = await client.post(
        "/openai/deployments/nope/chat/completions", params=VERSION, headers=headers, json=CHAT
    )
    assert missing.status_code == 404
    assert emulator.requests[0].query == VERSION and emulator.requests[0].path == path


@pytest.mark.parametrize("param", ["max_tokens", "temperature", "top_p", "logit_bias"])
async def test_reasoning_models_reject_what_openai_rejects(
    client: httpx.AsyncClient, param: str
) -> None:
    value: Any = {"1": 1} if param == "logit_bias" else 1
    body = {"model": "o3-mini", **CHAT, "max_completion_tokens": 50, param: value}
    answer = await client.post("/v1/chat/completions", json=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "unsupported_parameter"
    assert answer.json()["error"]["param"] == param


async def test_chat_quirks_reasoning_deltas_empty_first_delta_and_pings(
    emulator: OpenAIEmulator, client: httpx.AsyncClient
) -> None:
    emulator.enqueue(
        Reply(
            text="ok",
            reasoning="why",
            empty_first_delta=True,
            keepalive_comments=True,
            keepalive_text="ping",
        )
    )
    body = {"model": "gpt-4o-mini", **CHAT, "stream": True}
    raw = (await client.post("/v1/chat/completions", json=body)).content.decode()
    blocks = raw.strip().split("\n\n")
    assert ": ping" in blocks
    data = [json.loads(b[6:]) for b in blocks if b.startswith("data: {")]
    deltas = [d["choices"][0]["delta"] for d in data]
    assert deltas[0] == {}
    assert deltas[1]["role"] == "assistant"
    assert deltas[2] == {"content": None, "reasoning_content": "why"}
    assert deltas[3] == {"content": "ok"}
