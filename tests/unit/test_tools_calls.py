"""Streamed tool calls put back together from real-shaped chat/completions and Responses
events, as `bot.llm.events` parses them."""

from __future__ import annotations

from typing import Any

import pytest

from bot.parts import ToolCallPart
from bot.tools.calls import InvalidToolArguments, argument_error, decode_arguments
from tests.tool_feed import ChatToolCallAccumulator, ResponsesToolCallAccumulator

ToolCall = ToolCallPart


def chunk(tool_calls: list[dict[str, Any]], finish: str | None = None) -> dict[str, Any]:
    delta: dict[str, Any] = {"tool_calls": tool_calls}
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def opening(index: int, call_id: str, name: str) -> dict[str, Any]:
    return {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": ""},
    }


def fragment(index: int, piece: str) -> dict[str, Any]:
    return {"index": index, "function": {"arguments": piece}}


def test_split_arguments_are_concatenated_per_index() -> None:
    acc = ChatToolCallAccumulator()
    started = acc.feed_chunk(chunk([opening(0, "call_abc", "web__search")]))
    for piece in ['{"qu', 'ery": "tele', 'gram bot api"', "}"]:
        assert acc.feed_chunk(chunk([fragment(0, piece)])) == []
    acc.feed_chunk({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    assert [s.name for s in started] == ["web__search"]
    assert acc.calls() == [ToolCall("call_abc", "web__search", '{"query": "telegram bot api"}')]
    assert decode_arguments(acc.calls()[0].arguments) == {"query": "telegram bot api"}


def test_parallel_calls_interleave_and_come_out_in_index_order() -> None:
    acc = ChatToolCallAccumulator()
    acc.feed_chunk(chunk([opening(0, "call_a", "current_time")]))
    acc.feed_chunk(chunk([opening(1, "call_b", "fetch_url")]))
    acc.feed_chunk(chunk([fragment(1, '{"url": "https://')]))
    acc.feed_chunk(chunk([fragment(0, '{"timezone": ')]))
    acc.feed_chunk(chunk([fragment(1, 'example.com"}'), fragment(0, '"Europe/Paris"}')]))
    calls = acc.calls()
    assert [c.call_id for c in calls] == ["call_a", "call_b"]
    assert decode_arguments(calls[0].arguments) == {"timezone": "Europe/Paris"}
    assert decode_arguments(calls[1].arguments) == {"url": "https://example.com"}


def test_bad_json_is_reported_for_that_call_only() -> None:
    acc = ChatToolCallAccumulator()
    acc.feed_chunk(chunk([opening(0, "call_1", "a"), opening(1, "call_2", "b")]))
    acc.feed_chunk(chunk([fragment(0, '{"x": 1'), fragment(1, '{"y": 2}')]))
    bad, good = acc.calls()
    problem = argument_error(bad)
    assert problem is not None and "not valid JSON" in problem
    assert argument_error(good) is None


def test_missing_index_follows_ids_and_missing_id_gets_a_stable_one() -> None:
    acc = ChatToolCallAccumulator()
    acc.feed_delta({"tool_calls": [{"id": "x1", "function": {"name": "a", "arguments": "{"}}]})
    acc.feed_delta({"tool_calls": [{"function": {"arguments": "}"}}]})
    acc.feed_delta({"tool_calls": [{"id": "x2", "function": {"name": "b", "arguments": "{}"}}]})
    acc.feed_delta({"tool_calls": [{"index": 5, "function": {"name": "c"}}]})
    assert acc.calls() == [
        ToolCall("x1", "a", "{}"),
        ToolCall("x2", "b", "{}"),
        ToolCall("call_5", "c", ""),
    ]


def test_repeated_name_and_object_arguments_are_tolerated() -> None:
    acc = ChatToolCallAccumulator()
    acc.feed_delta({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "search"}}]})
    acc.feed_delta(
        {"tool_calls": [{"index": 0, "function": {"name": "search", "arguments": {"q": 1}}}]}
    )
    assert acc.calls() == [ToolCall("c", "search", '{"q":1}')]


def test_text_only_chunks_leave_the_accumulator_empty() -> None:
    acc = ChatToolCallAccumulator()
    acc.feed_chunk({"choices": [{"index": 0, "delta": {"content": "hi"}}]})
    acc.feed_chunk({"choices": [], "usage": {"prompt_tokens": 1}})
    assert not acc
    assert acc.calls() == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [("[1, 2]", "JSON object"), ('"s"', "JSON object"), ("{", "not valid JSON")],
)
def test_decode_arguments_rejects_what_is_not_an_object(text: str, problem: str) -> None:
    with pytest.raises(InvalidToolArguments, match=problem):
        decode_arguments(text)
    assert decode_arguments("  ") == {}


def responses_events(call_id: str, item_id: str, index: int, pieces: list[str]) -> list[Any]:
    item = {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": "get_weather",
        "arguments": "",
        "status": "in_progress",
    }
    events: list[dict[str, Any]] = [
        {"type": "response.output_item.added", "output_index": index, "item": item}
    ]
    events += [
        {
            "type": "response.function_call_arguments.delta",
            "item_id": item_id,
            "output_index": index,
            "delta": piece,
        }
        for piece in pieces
    ]
    whole = "".join(pieces)
    events.append(
        {
            "type": "response.function_call_arguments.done",
            "item_id": item_id,
            "output_index": index,
            "arguments": whole,
        }
    )
    done = {**item, "arguments": whole, "status": "completed"}
    events.append({"type": "response.output_item.done", "output_index": index, "item": done})
    return events


def test_responses_function_calls_are_collected_in_output_order() -> None:
    acc = ResponsesToolCallAccumulator()
    first = responses_events("call_1", "fc_1", 1, ['{"city":', ' "Oslo"}'])
    second = responses_events("call_2", "fc_2", 2, ["{}"])
    started = []
    for event in [first[0], second[0], *first[1:], *second[1:]]:
        started += acc.feed_event(event)
    acc.feed_event({"type": "response.output_text.delta", "delta": "ignored"})
    assert [s.id for s in started] == ["call_1", "call_2"]
    assert acc.calls() == [
        ToolCall("call_1", "get_weather", '{"city": "Oslo"}'),
        ToolCall("call_2", "get_weather", "{}"),
    ]


def test_responses_completed_output_fills_in_skipped_items() -> None:
    acc = ResponsesToolCallAccumulator()
    item = {"type": "function_call", "id": "fc_9", "call_id": "call_9", "name": "t"}
    final = {"output": [{"type": "message"}, {**item, "arguments": '{"a": 1}'}]}
    acc.feed_event({"type": "response.completed", "response": final})
    assert acc.calls() == [ToolCall("call_9", "t", '{"a": 1}')]
