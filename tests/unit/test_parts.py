"""Typed content parts: their text forms, token counts, storage codec, and the exact JSON each
API mode sends for them (plain strings stay plain strings)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from bot.llm.bodies import chat_body, completions_body, responses_body
from bot.llm.endpoint import Endpoint, PromptTemplate
from bot.llm.image_tokens import image_tokens
from bot.llm.tokens import TOKENS_PER_MESSAGE, TokenCounter
from bot.llm.types import ChatMessage, ChatRequest
from bot.model_profile import DEFAULT_MESSAGE_TEMPLATE, DEFAULT_STOP, DEFAULT_TEMPLATE, ApiMode
from bot.parts import (
    AudioTranscriptPart,
    DocumentTextPart,
    FileRef,
    ImagePart,
    Part,
    TextPart,
    ToolCallPart,
    ToolResultPart,
    as_prompt_text,
    decode,
    encode,
    is_plain,
    text_form,
)
from bot.prompt.fit import build_prompt
from bot.values import HistoryItem

JPEG = b"\xff\xd8\xff\xe0fake-jpeg"
JPEG_URL = "data:image/jpeg;base64," + base64.b64encode(JPEG).decode()
PHOTO = ImagePart(JPEG, text="a cat on a sofa", width=1024, height=768)
QUESTION = TextPart("What is in this picture?")
CALL = ToolCallPart("call_abc", "get_weather", '{"city": "Paris"}')
RESULT = ToolResultPart("call_abc", '{"temp_c": 21}', name="get_weather")
SYSTEM = ChatMessage("system", "Be brief.")
COUNTER = TokenCounter("gpt-4o-mini")


def endpoint(api: ApiMode) -> Endpoint:
    template = PromptTemplate(DEFAULT_TEMPLATE, DEFAULT_MESSAGE_TEMPLATE, DEFAULT_STOP)
    return Endpoint("http://llm.test/v1", "gpt-4o-mini", 8000, template, api=api)


def request(*messages: ChatMessage) -> ChatRequest:
    return ChatRequest("gpt-4o-mini", (SYSTEM, *messages), 64)


def sent(api: ApiMode, *messages: ChatMessage) -> Any:
    if api == "chat":
        return chat_body(request(*messages), endpoint(api))["messages"][1:]
    if api == "responses":
        return responses_body(request(*messages), endpoint(api))["input"]
    return completions_body(request(*messages), endpoint(api))["prompt"]


def test_an_image_part_is_an_image_url_item_in_chat_mode() -> None:
    assert sent("chat", ChatMessage("user", (QUESTION, PHOTO))) == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this picture?"},
                {"type": "image_url", "image_url": {"url": JPEG_URL, "detail": "auto"}},
            ],
        }
    ]


def test_an_image_part_is_an_input_image_item_in_responses_mode() -> None:
    assert sent("responses", ChatMessage("user", (QUESTION, PHOTO))) == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is in this picture?"},
                {"type": "input_image", "image_url": JPEG_URL, "detail": "auto"},
            ],
        }
    ]


def test_an_image_part_is_a_text_placeholder_in_completions_mode() -> None:
    prompt = sent("completions", ChatMessage("user", (QUESTION, PHOTO)))
    assert prompt == (
        "Be brief.\n\nUser: What is in this picture?\n\n[image: a cat on a sofa]\n\nAssistant:"
    )
    bare = sent("completions", ChatMessage("user", (ImagePart(JPEG),)))
    assert "User: [image]\n\n" in bare


def test_a_tool_call_and_its_result_are_the_exact_chat_messages() -> None:
    messages = (ChatMessage("assistant", (CALL,)), ChatMessage("tool", (RESULT,)))
    assert sent("chat", *messages) == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_abc",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_abc", "content": '{"temp_c": 21}'},
    ]


def test_assistant_text_before_a_tool_call_rides_on_the_same_message() -> None:
    message, lost = sent("chat", ChatMessage("assistant", (TextPart("Let me check."), CALL)))
    assert message["content"] == "Let me check."
    assert lost["tool_call_id"] == "call_abc", "a call whose result is missing gets a stub"
    assert [c["id"] for c in message["tool_calls"]] == ["call_abc"]


def test_a_tool_call_and_its_result_are_function_call_items_in_responses_mode() -> None:
    messages = (ChatMessage("assistant", (CALL,)), ChatMessage("tool", (RESULT,)))
    assert sent("responses", *messages) == [
        {
            "type": "function_call",
            "call_id": "call_abc",
            "name": "get_weather",
            "arguments": '{"city": "Paris"}',
        },
        {"type": "function_call_output", "call_id": "call_abc", "output": '{"temp_c": 21}'},
    ]


def test_several_results_are_one_tool_message_each_in_call_order() -> None:
    second = ToolResultPart("call_def", "sunny")
    calls = ChatMessage("assistant", (CALL, ToolCallPart("call_def", "sky", "{}")))
    tool = sent("chat", calls, ChatMessage("tool", (RESULT, second)))[1:]
    assert [(m["role"], m["tool_call_id"]) for m in tool] == [
        ("tool", "call_abc"),
        ("tool", "call_def"),
    ]


@pytest.mark.parametrize("api", ["chat", "responses"])
def test_plain_strings_and_text_like_parts_are_sent_as_plain_strings(api: ApiMode) -> None:
    voice = AudioTranscriptPart("Remind me to buy milk.", mime="audio/ogg", duration=2.5)
    assert sent(api, ChatMessage("user", "Hi")) == [{"role": "user", "content": "Hi"}]
    assert sent(api, ChatMessage("user", (TextPart("Hi"),))) == [{"role": "user", "content": "Hi"}]
    [message] = sent(api, ChatMessage("user", (TextPart("Listen:"), voice)))
    assert message == {"role": "user", "content": "Listen:\n\nRemind me to buy milk."}


def test_a_document_is_sent_as_its_text_under_its_name() -> None:
    doc = DocumentTextPart("Total: 42 EUR", name="invoice.pdf", mime="application/pdf")
    [message] = sent("chat", ChatMessage("user", (TextPart("Check this"), doc)))
    assert message["content"] == "Check this\n\n[document: invoice.pdf]\nTotal: 42 EUR"


def test_the_text_form_joins_what_each_part_says() -> None:
    parts: tuple[Part, ...] = (QUESTION, PHOTO, ImagePart(JPEG))
    assert text_form(parts) == "What is in this picture?\n\na cat on a sofa"
    assert text_form("plain") == "plain"
    assert CALL.text == 'get_weather({"city": "Paris"})'
    assert as_prompt_text((CALL, RESULT)) == (
        '[tool call call_abc: get_weather({"city": "Paris"})]\n\n'
        '[tool result call_abc: {"temp_c": 21}]'
    )
    assert is_plain((QUESTION, TextPart("more")))
    assert not is_plain((QUESTION, PHOTO))


EVERY_KIND: tuple[Part, ...] = (
    TextPart("hello", tokens=1),
    ImagePart(
        JPEG,
        "image/png",
        "a chart",
        "low",
        640,
        480,
        FileRef("AgAD-file", "uniq-1", 12345),
        85,
    ),
    AudioTranscriptPart("hi there", "audio/ogg", 1.5, FileRef("voice-id", "uniq-2"), 2),
    DocumentTextPart("page one", "a.txt", "text/plain", None, 2),
    ToolCallPart("call_1", "lookup", '{"q": "x"}', 9),
    ToolResultPart("call_1", "found", "lookup", True, 7),
)


@pytest.mark.parametrize("part", EVERY_KIND, ids=lambda p: p.kind)
def test_every_kind_survives_storage_through_json(part: Part) -> None:
    kind, text, data, blob = encode(part)
    data = json.loads(json.dumps(data))  # as a JSON column gives it back
    assert decode(kind, text, data, blob, part.tokens) == part


def test_an_unknown_kind_reads_back_as_its_text_form() -> None:
    assert decode("sticker", "a waving cat", {"emoji": "x"}, None, 4) == TextPart("a waving cat", 4)


def test_a_text_part_costs_what_the_same_plain_message_costs() -> None:
    text = "The quick brown fox jumps over the lazy dog."
    assert COUNTER.count_content("user", (TextPart(text),)) == COUNTER.count_message("user", text)
    assert COUNTER.count_content("user", text) == COUNTER.count_message("user", text)


def test_images_cost_tiles_per_openai_vision_rule() -> None:
    assert image_tokens("gpt-4o", 1024, 1024) == 765  # 768 × 768: 4 tiles
    assert image_tokens("gpt-4o", 2048, 4096) == 1105  # 768 × 1536: 6 tiles
    assert image_tokens("gpt-4o", 300, 200) == 255  # never upscaled: 1 tile
    assert image_tokens("gpt-4o", 4000, 3000, "low") == 85
    assert image_tokens("gpt-4o", 0, 0) == 85 + 170 * 8  # unknown size: the largest fitted


def test_counted_parts_carry_their_tokens_and_the_message_sums_them() -> None:
    parts = COUNTER.counted((QUESTION, PHOTO, CALL, RESULT))
    assert [p.tokens for p in parts] == [COUNTER.count_part(p) for p in parts]
    assert parts[1].tokens == image_tokens(COUNTER.model, 1024, 768)
    assert parts[3].tokens > TOKENS_PER_MESSAGE + COUNTER.count_text(RESULT.text)
    total = COUNTER.count_content("user", parts)
    assert total == TOKENS_PER_MESSAGE + 1 + sum(p.tokens for p in parts) + 3


class _History:
    def __init__(self, items: list[HistoryItem]) -> None:
        self._items = items

    def __aiter__(self) -> _History:
        return self

    async def __anext__(self) -> HistoryItem:
        if not self._items:
            raise StopAsyncIteration
        return self._items.pop(0)


async def test_the_prompt_carries_a_stored_message_s_parts() -> None:
    parts = COUNTER.counted((QUESTION, PHOTO))
    photo = HistoryItem(1, "user", text_form(parts), COUNTER.count_content("user", parts), parts)
    answer = HistoryItem(2, "assistant", "A cat.", COUNTER.count_message("assistant", "A cat."))
    new = HistoryItem(3, "user", "Its colour?", COUNTER.count_message("user", "Its colour?"))
    prompt = await build_prompt(
        system_prompt="",
        new_message=new,
        history=_History([answer, photo]),
        budget=40_000,  # gpt-4o-mini counts an image at ~33× gpt-4o's tokens
        counter=COUNTER,
    )
    assert [m.content for m in prompt.messages] == [parts, "A cat.", "Its colour?"]
    assert prompt.tokens == 3 + photo.tokens + answer.tokens + new.tokens


async def test_a_tool_result_whose_call_was_trimmed_is_not_sent() -> None:
    def stored(id_: int, role: str, parts: tuple[Part, ...]) -> HistoryItem:
        counted = COUNTER.counted(parts)
        return HistoryItem(
            id_, role, text_form(counted), COUNTER.count_content(role, counted), counted
        )

    big_call = ToolCallPart("call_abc", "search", '{"q": "' + "sea " * 400 + '"}')
    history = [
        stored(4, "assistant", (TextPart("It is 21 degrees."),)),
        stored(3, "tool", (RESULT,)),
        stored(2, "assistant", (big_call,)),
        stored(1, "user", (TextPart("Weather?"),)),
    ]
    new = HistoryItem(5, "user", "Thanks", COUNTER.count_message("user", "Thanks"))
    prompt = await build_prompt(
        system_prompt="", new_message=new, history=_History(history), budget=200, counter=COUNTER
    )
    assert [m.role for m in prompt.messages] == ["user"]
    assert prompt.tokens == 3 + new.tokens
