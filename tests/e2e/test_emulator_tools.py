"""The OpenAI emulator checks tool calls and results the way OpenAI does: a result answers a
call made just before it, and every call is answered (chat); a `function_call_output` needs its
`function_call` earlier in the input (Responses)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from emulators.openai_api import OpenAIEmulator

MODEL = "gpt-4o-mini"
CALL = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
ASKED = {"role": "assistant", "content": None, "tool_calls": [CALL]}
ANSWERED = {"role": "tool", "tool_call_id": "call_1", "content": "42"}
USER = {"role": "user", "content": "hi"}


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": "Bearer sk-test-key"}
    async with (
        OpenAIEmulator("sk-test-key") as emulator,
        httpx.AsyncClient(base_url=emulator.base_url, headers=headers) as c,
    ):
        yield c


async def chat(client: httpx.AsyncClient, *messages: dict[str, Any]) -> httpx.Response:
    return await client.post("/chat/completions", json={"model": MODEL, "messages": messages})


async def test_a_call_followed_by_its_result_is_accepted(client: httpx.AsyncClient) -> None:
    assert (await chat(client, USER, ASKED, ANSWERED, USER)).status_code == 200


async def test_a_result_without_its_call_is_rejected(client: httpx.AsyncClient) -> None:
    response = await chat(client, USER, ANSWERED, USER)
    assert response.status_code == 400
    assert "must be a response to a preceeding message with 'tool_calls'" in response.text
    assert response.json()["error"]["param"] == "messages.[1].role"


async def test_a_call_without_its_result_is_rejected(client: httpx.AsyncClient) -> None:
    response = await chat(client, USER, ASKED, USER)
    assert response.status_code == 400
    assert "did not have response messages: call_1" in response.text
    assert response.json()["error"]["param"] == "messages.[1].role"


async def test_responses_take_function_calls_and_their_outputs(client: httpx.AsyncClient) -> None:
    call = {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{}"}
    output = {"type": "function_call_output", "call_id": "call_1", "output": "42"}
    body = {"model": MODEL, "input": [USER, call, output, USER]}
    assert (await client.post("/responses", json=body)).status_code == 200
    orphan = await client.post("/responses", json={**body, "input": [USER, output, USER]})
    assert orphan.status_code == 400
    assert "No tool call found for function call output with call_id call_1." in orphan.text
