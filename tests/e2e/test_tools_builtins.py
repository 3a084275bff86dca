"""Built-ins against the OpenAI emulator: image generation, and a whole model → tools →
model exchange through `ToolLoop` whose follow-up request the emulator checks strictly."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import httpx
import pytest

from bot.config import Settings
from bot.llm.bodies import chat_body, responses_body
from bot.llm.types import ChatMessage, ChatRequest
from bot.parts import Part, TextPart
from bot.tools import (
    ImageBackend,
    ToolContext,
    ToolLoop,
    ToolRegistry,
    ToolRunner,
    register_builtins,
)
from bot.tools.builtins.generate_image import GenerateImage
from emulators.openai_api import OpenAIEmulator
from emulators.openai_image_generation import PNG
from emulators.openai_tools import ScriptedCall, ToolCallsReply
from tests.tool_feed import ENDPOINT, ChatToolCallAccumulator, ResponsesToolCallAccumulator


def settings(**overrides: Any) -> Settings:
    return Settings(telegram_bot_token="123:abc", _env_file=None, **overrides)


def image_tool(model: OpenAIEmulator, http: httpx.AsyncClient, image_model: str) -> GenerateImage:
    return GenerateImage(
        http, base_url=model.base_url, api_key=model.api_key, model=image_model, size="1024x1024"
    )


@pytest.mark.parametrize("image_model", ["gpt-image-1", "dall-e-3"])
async def test_generate_image_returns_the_png_as_a_photo(
    model: OpenAIEmulator, image_model: str
) -> None:
    async with httpx.AsyncClient() as http:
        output = await image_tool(model, http, image_model)({"prompt": "a cat"}, ToolContext())
    assert not output.is_error, output.text
    (photo,) = output.attachments
    assert (photo.kind, photo.mime_type, photo.data) == ("photo", "image/png", PNG)
    assert "sent to the user" in output.text
    body = model.bodies("/v1/images/generations")[0]
    assert body["prompt"] == "a cat" and body["model"] == image_model
    assert ("response_format" in body) is (image_model == "dall-e-3")
    assert model.requests[0].headers["authorization"] == f"Bearer {model.api_key}"


async def test_generate_image_reports_a_refusal(model: OpenAIEmulator) -> None:
    async with httpx.AsyncClient() as http:
        tool = GenerateImage(
            http, base_url=model.base_url, api_key="sk-wrong", model="gpt-image-1", size="1024x1024"
        )
        output = await tool({"prompt": "a cat"}, ToolContext())
        empty = await tool({"prompt": " "}, ToolContext())
    assert output.is_error and output.text.startswith("Error: image generation failed: HTTP 401")
    assert "sk-wrong" not in output.text
    assert empty.is_error and not output.attachments


async def stream(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> list[Any]:
    async with http.stream("POST", path, json=body) as response:
        assert response.status_code == 200, await response.aread()
        lines = [line async for line in response.aiter_lines()]
    return [json.loads(x[6:]) for x in lines if x.startswith("data: ") and x != "data: [DONE]"]


async def test_chat_tool_loop_runs_builtins_and_the_follow_up_is_accepted(
    model: OpenAIEmulator,
) -> None:
    calls = [
        ScriptedCall("current_time", '{"timezone": "Europe/Berlin"}', id="call_t"),
        ScriptedCall("generate_image", '{"prompt": "a lighthouse"}', id="call_i"),
        ScriptedCall("no_such_tool", "{}", id="call_x"),
        ScriptedCall("current_time", '{"timezone": ', id="call_bad"),
    ]
    model.enqueue(ToolCallsReply(calls=calls, interleave=True, chunk_chars=3), "Done: here it is.")
    registry = ToolRegistry()
    headers = {"Authorization": f"Bearer {model.api_key}"}
    async with httpx.AsyncClient(base_url=model.base_url, headers=headers) as http:
        backend = ImageBackend(http, model.base_url, model.api_key)
        names = register_builtins(registry, settings(), backend)
        assert names == ["current_time", "fetch_url", "generate_image"]
        runner = ToolRunner(registry, timeout=10, max_result_bytes=2_000)
        loop = ToolLoop(runner, ToolContext(), max_steps=3, timeout=60)
        user = ChatMessage("user", "Time and a picture?")
        reply: list[Part] = []
        photos = []
        while True:
            tools = registry.request_tools() if loop.tools_allowed else ()
            messages = (user, ChatMessage("assistant", tuple(reply))) if reply else (user,)
            body = chat_body(ChatRequest("gpt-4o-mini", messages, 256, tools=tools), ENDPOINT)
            acc = ChatToolCallAccumulator()
            text = ""
            for event in await stream(http, "/chat/completions", body):
                acc.feed_chunk(event)
                text += (event["choices"] or [{}])[0].get("delta", {}).get("content") or ""
            if not acc:
                break
            outcome = await loop.step(acc.calls())
            reply += outcome.parts
            photos += [a for r in outcome.results for a in r.attachments]
    assert text == "Done: here it is."
    sent = model.chat_requests()[1]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "tool", "tool", "tool", "tool"]
    assert [m["tool_call_id"] for m in sent[2:]] == ["call_t", "call_i", "call_x", "call_bad"]
    assert "time zone Europe/Berlin" in sent[2]["content"]
    assert "unknown tool 'no_such_tool'" in sent[4]["content"]
    assert "invalid arguments" in sent[5]["content"]
    assert len(photos) == 1 and photos[0].data == PNG


async def test_responses_tool_loop_round_trip(model: OpenAIEmulator) -> None:
    model.enqueue(
        ToolCallsReply(text="Checking.", calls=[ScriptedCall("current_time", "{}", id="call_1")]),
        "It is late.",
    )
    registry = ToolRegistry()
    register_builtins(
        registry,
        settings(builtin_tools="current_time"),
    )
    loop = ToolLoop(
        ToolRunner(registry, timeout=5, max_result_bytes=1_000),
        ToolContext(timezone="America/New_York"),
        max_steps=2,
        timeout=60,
    )
    headers = {"Authorization": f"Bearer {model.api_key}"}
    user = ChatMessage("user", "Time?")
    endpoint = dataclasses.replace(ENDPOINT, api="responses")
    async with httpx.AsyncClient(base_url=model.base_url, headers=headers) as http:
        request = ChatRequest("gpt-4o-mini", (user,), 256, tools=registry.request_tools())
        acc = ResponsesToolCallAccumulator()
        for event in await stream(http, "/responses", responses_body(request, endpoint)):
            acc.feed_event(event)
        outcome = await loop.step(acc.calls())
        reply = ChatMessage("assistant", (TextPart("Checking."), *outcome.parts))
        follow_up = dataclasses.replace(request, messages=(user, reply))
        await stream(http, "/responses", responses_body(follow_up, endpoint))
    second = model.bodies("/v1/responses")[1]["input"]
    assert second[1] == {"role": "assistant", "content": "Checking."}
    assert second[2]["type"] == "function_call" and second[2]["call_id"] == "call_1"
    assert second[3]["type"] == "function_call_output"
    assert "America/New_York" in second[3]["output"]
