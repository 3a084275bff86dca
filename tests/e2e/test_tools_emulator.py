"""The OpenAI emulator's function calling over real HTTP: scripted tool-call streams parsed by
`bot.tools.calls`, OpenAI's pairing rules for tool messages, and the images endpoint."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from bot.llm.bodies import chat_messages, responses_items
from bot.llm.types import ChatMessage
from bot.parts import TextPart, ToolCallPart, ToolResultPart
from bot.tools.calls import argument_error
from emulators.openai_api import OpenAIEmulator
from emulators.openai_tools import ScriptedCall, ToolCallsReply
from tests.tool_feed import ChatToolCallAccumulator, ResponsesToolCallAccumulator

ToolCall = ToolCallPart

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "web__search",
            "description": "Search the web.",
            "parameters": {"type": "object", "properties": {"query": {"type": "string"}}},
        },
    }
]


def client(model: OpenAIEmulator) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {model.api_key}"}
    return httpx.AsyncClient(base_url=model.base_url, headers=headers, timeout=10)


async def stream_events(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> list[Any]:
    events: list[Any] = []
    async with http.stream("POST", path, json=body) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if line.startswith("data: ") and line != "data: [DONE]":
                events.append(json.loads(line[6:]))
    return events


def chat_body(messages: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": messages, "stream": True, **extra}


async def test_split_and_parallel_calls_stream_and_parse(model: OpenAIEmulator) -> None:
    calls = [
        ScriptedCall("web__search", '{"query": "telegram bot api 10"}', id="call_a"),
        ScriptedCall("current_time", '{"timezone": "Europe/Oslo"}', id="call_b"),
    ]
    model.enqueue(ToolCallsReply(calls=calls, interleave=True, chunk_chars=4))
    async with client(model) as http:
        body = chat_body([{"role": "user", "content": "hi"}], tools=TOOLS)
        events = await stream_events(http, "/chat/completions", body)
    fragments = [e for e in events if e["choices"] and e["choices"][0]["delta"].get("tool_calls")]
    assert len(fragments) > 10  # the arguments really arrive in pieces, interleaved
    assert {f["choices"][0]["delta"]["tool_calls"][0]["index"] for f in fragments[2:4]} == {0, 1}
    assert events[-1]["choices"][0]["finish_reason"] == "tool_calls"
    acc = ChatToolCallAccumulator()
    for event in events:
        acc.feed_chunk(event)
    assert acc.calls() == [
        ToolCall("call_a", "web__search", '{"query": "telegram bot api 10"}'),
        ToolCall("call_b", "current_time", '{"timezone": "Europe/Oslo"}'),
    ]


async def test_bad_json_arguments_are_sent_as_scripted(model: OpenAIEmulator) -> None:
    model.enqueue(ToolCallsReply(calls=[ScriptedCall("web__search", '{"query": "x', id="c1")]))
    async with client(model) as http:
        events = await stream_events(
            http, "/chat/completions", chat_body([{"role": "user", "content": "hi"}], tools=TOOLS)
        )
    acc = ChatToolCallAccumulator()
    for event in events:
        acc.feed_chunk(event)
    (call,) = acc.calls()
    assert call.arguments == '{"query": "x'
    assert argument_error(call) is not None


async def test_two_step_exchange_sends_exactly_the_pairing_openai_wants(
    model: OpenAIEmulator,
) -> None:
    call = ToolCall("call_1", "web__search", '{"query": "weather"}')
    model.enqueue(
        ToolCallsReply(
            text="Let me look.", calls=[ScriptedCall(call.name, call.arguments, call.call_id)]
        )
    )
    model.enqueue("It is sunny.")
    user = {"role": "user", "content": "Weather?"}
    async with client(model) as http:
        first = await stream_events(http, "/chat/completions", chat_body([user], tools=TOOLS))
        acc = ChatToolCallAccumulator()
        text = ""
        for event in first:
            acc.feed_chunk(event)
            if event["choices"]:
                text += event["choices"][0]["delta"].get("content") or ""
        result = ToolResultPart("call_1", "sunny, 21 °C", "web__search")
        reply = ChatMessage("assistant", (TextPart(text), *acc.calls(), result))
        follow_up = [user, *chat_messages([reply])]
        second = await stream_events(http, "/chat/completions", chat_body(follow_up, tools=TOOLS))
    answer = "".join(e["choices"][0]["delta"].get("content") or "" for e in second if e["choices"])
    assert answer == "It is sunny."
    assert model.chat_requests()[1]["messages"] == [
        {"role": "user", "content": "Weather?"},
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "web__search", "arguments": '{"query": "weather"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny, 21 °C"},
    ]


ASSISTANT_WITH_CALLS = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "a", "arguments": "{}"}},
        {"id": "call_2", "type": "function", "function": {"name": "b", "arguments": "{}"}},
    ],
}
USER = {"role": "user", "content": "hi"}


def tool(call_id: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": "ok"}


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([USER, tool("call_1")], "must be a response to a preceeding message with 'tool_calls'"),
        (
            [USER, ASSISTANT_WITH_CALLS, tool("call_1"), tool("call_9")],
            "must be a response to a preceeding message with 'tool_calls'",
        ),
        (
            [USER, ASSISTANT_WITH_CALLS, tool("call_1"), USER],
            "did not have response messages: call_2",
        ),
        ([USER, ASSISTANT_WITH_CALLS], "did not have response messages: call_1, call_2"),
        (
            [USER, ASSISTANT_WITH_CALLS, USER, tool("call_1"), tool("call_2")],
            "did not have response messages: call_1, call_2",
        ),
    ],
)
async def test_orphaned_or_missing_tool_messages_get_openais_400(
    model: OpenAIEmulator, messages: list[dict[str, Any]], fragment: str
) -> None:
    async with client(model) as http:
        response = await http.post("/chat/completions", json=chat_body(messages))
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]


async def test_answered_calls_in_any_order_are_accepted(model: OpenAIEmulator) -> None:
    messages = [USER, ASSISTANT_WITH_CALLS, tool("call_2"), tool("call_1"), USER]
    async with client(model) as http:
        response = await http.post("/chat/completions", json=chat_body(messages, stream=False))
    assert response.status_code == 200


@pytest.mark.parametrize(
    "tools",
    [
        [{"type": "function", "function": {"name": "bad name!"}}],
        [{"type": "function", "function": {"name": "ok", "parameters": {"type": "array"}}}],
        [{"type": "function"}],
        [],
    ],
)
async def test_malformed_tools_are_rejected(model: OpenAIEmulator, tools: list[Any]) -> None:
    async with client(model) as http:
        response = await http.post("/chat/completions", json=chat_body([USER], tools=tools))
    assert response.status_code == 400


async def test_non_streamed_answer_carries_tool_calls(model: OpenAIEmulator) -> None:
    model.enqueue(ToolCallsReply(calls=[ScriptedCall("a", '{"x": 1}', id="call_x")]))
    async with client(model) as http:
        response = await http.post("/chat/completions", json=chat_body([USER], stream=False))
    choice = response.json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    assert choice["message"]["tool_calls"][0]["function"] == {"name": "a", "arguments": '{"x": 1}'}


RESPONSES_TOOLS = [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}]


async def test_responses_function_calls_round_trip(model: OpenAIEmulator) -> None:
    model.enqueue(
        ToolCallsReply(calls=[ScriptedCall("get_weather", '{"city": "Oslo"}', id="call_w")])
    )
    model.enqueue("Cold.")
    user = {"role": "user", "content": "Weather in Oslo?"}
    body: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "input": [user],
        "tools": RESPONSES_TOOLS,
        "stream": True,
    }
    async with client(model) as http:
        events = await stream_events(http, "/responses", body)
        acc = ResponsesToolCallAccumulator()
        for event in events:
            acc.feed_event(event)
        calls = acc.calls()
        assert calls == [ToolCall("call_w", "get_weather", '{"city": "Oslo"}')]
        result = ToolResultPart("call_w", "-3 °C", "get_weather")
        items = responses_items([ChatMessage("assistant", (*calls, result))])
        second = await stream_events(http, "/responses", {**body, "input": [user, *items]})
    assert (
        "".join(e.get("delta", "") for e in second if e["type"].endswith("text.delta")) == "Cold."
    )
    assert model.bodies("/v1/responses")[1]["input"][1:] == [
        {
            "type": "function_call",
            "call_id": "call_w",
            "name": "get_weather",
            "arguments": '{"city": "Oslo"}',
        },
        {"type": "function_call_output", "call_id": "call_w", "output": "-3 °C"},
    ]


@pytest.mark.parametrize(
    ("items", "fragment"),
    [
        (
            [{"type": "function_call_output", "call_id": "call_9", "output": "x"}],
            "No tool call found for function call output with call_id call_9",
        ),
        (
            [{"type": "function_call", "call_id": "call_1", "name": "a", "arguments": "{}"}],
            "No tool output found for function call call_1",
        ),
    ],
)
async def test_responses_unpaired_items_are_rejected(
    model: OpenAIEmulator, items: list[Any], fragment: str
) -> None:
    body = {"model": "gpt-4o-mini", "input": [{"role": "user", "content": "hi"}, *items]}
    async with client(model) as http:
        response = await http.post("/responses", json=body)
    assert response.status_code == 400
    assert fragment in response.json()["error"]["message"]


async def test_images_endpoint_answers_base64_png(model: OpenAIEmulator) -> None:
    async with client(model) as http:
        ok = await http.post(
            "/images/generations", json={"model": "gpt-image-1", "prompt": "a cat"}
        )
        refused = await http.post(
            "/images/generations",
            json={"model": "gpt-image-1", "prompt": "a cat", "response_format": "b64_json"},
        )
        missing = await http.post("/images/generations", json={"model": "gpt-image-1"})
    assert base64.b64decode(ok.json()["data"][0]["b64_json"]).startswith(b"\x89PNG")
    assert refused.status_code == 400
    assert missing.status_code == 400
