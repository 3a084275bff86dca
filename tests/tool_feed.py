"""Tool-call accumulators fed raw stream payloads through the bot's own stream parsers."""

from __future__ import annotations

import json
from typing import Any

from bot.llm.endpoint import Endpoint, PromptTemplate
from bot.llm.events import CompletionEvents, ResponseEvents
from bot.tools.calls import CallStarted, ToolCallAccumulator

#: A chat/completions backend for building request bodies (nothing is sent to it).
ENDPOINT = Endpoint(
    "http://llm.test/v1", "gpt-4o-mini", 8000, PromptTemplate("{messages}", "{content}", ())
)


class ChatToolCallAccumulator(ToolCallAccumulator):
    """The accumulator fed through the chat/completions stream parser."""

    def __init__(self) -> None:
        super().__init__()
        self.parser = CompletionEvents()

    def feed_chunk(self, chunk: dict[str, Any]) -> list[CallStarted]:
        event = self.parser.feed("", json.dumps(chunk))
        return self.feed(event.tool_calls) if event is not None else []

    def feed_delta(self, delta: dict[str, Any]) -> list[CallStarted]:
        return self.feed_chunk({"choices": [{"index": 0, "delta": delta}]})


class ResponsesToolCallAccumulator(ToolCallAccumulator):
    """The accumulator fed through the Responses stream parser."""

    def __init__(self) -> None:
        super().__init__()
        self.parser = ResponseEvents()

    def feed_event(self, payload: dict[str, Any]) -> list[CallStarted]:
        event = self.parser.feed("", json.dumps(payload))
        return self.feed(event.tool_calls) if event is not None else []
