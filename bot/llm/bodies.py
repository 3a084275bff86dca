"""Request bodies of the three generation APIs, built from one `ChatRequest`.

Reasoning models (o1/o3/o4/gpt-5 style) take `max_completion_tokens` and reject the sampling
knobs (temperature, top_p, penalties, logit_bias), so those are left out for them. `n` is never
sent: a chat reply is one choice, and the server default is 1.

A message whose content is a plain string is sent as one (every server takes that). One with
parts becomes what its mode allows: chat content arrays with `image_url` items, tool calls on
the assistant message and one `tool` message per result; Responses `input_text`/`input_image`
content and `function_call`/`function_call_output` items; completions the parts' text forms.
Content arrays are sent only for images: text-like parts (transcripts, document text) join
into the plain string.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bot.llm.endpoint import Endpoint
from bot.llm.exchanges import Segment, paired
from bot.llm.types import ChatMessage, ChatRequest, FunctionTool
from bot.parts import ImagePart, Part, as_prompt_text, prompt_text

MAX_STOP = 4
MAX_DESCRIPTION = 1024


def _function(tool: FunctionTool) -> dict[str, Any]:
    """A tool's name, description and schema: chat/completions wraps them in `function`,
    the Responses API puts them beside `type`."""
    return {
        "name": tool.name,
        "description": tool.description[:MAX_DESCRIPTION],
        "parameters": tool.parameters,
    }


def _present(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _sampling(request: ChatRequest, reasoning: bool) -> dict[str, Any]:
    """The optional parameters the chat and completions APIs share."""
    s = request.sampling
    tuned = (
        {}
        if reasoning
        else {
            "temperature": s.temperature,
            "top_p": s.top_p,
            "presence_penalty": s.presence_penalty,
            "frequency_penalty": s.frequency_penalty,
            "logit_bias": dict(s.logit_bias) or None,
        }
    )
    return _present({**tuned, "seed": s.seed, "user": request.user})


def _chat_content(parts: str | tuple[Part, ...]) -> str | list[dict[str, Any]]:
    if isinstance(parts, str):
        return parts
    if not any(isinstance(p, ImagePart) for p in parts):
        return as_prompt_text(parts)
    items: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ImagePart):
            image = {"url": part.data_url, "detail": part.detail}
            items.append({"type": "image_url", "image_url": image})
        elif text := prompt_text(part):
            items.append({"type": "text", "text": text})
    return items


def _chat_items(segment: Segment) -> list[dict[str, Any]]:
    """One segment as chat/completions messages: the assistant message carrying the calls,
    then one `tool` message per result."""
    content = segment.content
    if not segment.calls:
        role = "user" if segment.role == "tool" else segment.role
        return [{"role": role, "content": _chat_content(content)}]
    function_calls = [
        {
            "id": c.call_id,
            "type": "function",
            "function": {"name": c.name, "arguments": c.arguments},
        }
        for c in segment.calls
    ]
    found: list[dict[str, Any]] = [
        {
            "role": "assistant",
            "content": _chat_content(content) if content else None,
            "tool_calls": function_calls,
        }
    ]
    found += [
        {"role": "tool", "tool_call_id": r.call_id, "content": r.text} for r in segment.results
    ]
    return found


def chat_messages(messages: Iterable[ChatMessage]) -> list[dict[str, Any]]:
    """A prompt's messages as chat/completions messages, every call answered (`paired`)."""
    return [item for segment in paired(messages) for item in _chat_items(segment)]


def _responses_content(parts: str | tuple[Part, ...], role: str) -> str | list[dict[str, Any]]:
    if isinstance(parts, str):
        return parts
    if not any(isinstance(p, ImagePart) for p in parts):
        return as_prompt_text(parts)
    text_type = "output_text" if role == "assistant" else "input_text"
    items: list[dict[str, Any]] = []
    for part in parts:
        if isinstance(part, ImagePart):
            items.append({"type": "input_image", "image_url": part.data_url, "detail": part.detail})
        elif text := prompt_text(part):
            items.append({"type": text_type, "text": text})
    return items


def _responses_items(segment: Segment) -> list[dict[str, Any]]:
    """One segment as Responses `input` items: its content, then its function calls and their
    outputs as items of their own."""
    role = "user" if segment.role == "tool" else segment.role
    found = [{"role": role, "content": _responses_content(segment.content, role)}]
    if segment.calls and not segment.content:
        found = []
    found += [
        {"type": "function_call", "call_id": c.call_id, "name": c.name, "arguments": c.arguments}
        for c in segment.calls
    ]
    found += [
        {"type": "function_call_output", "call_id": r.call_id, "output": r.text}
        for r in segment.results
    ]
    return found


def responses_items(messages: Iterable[ChatMessage]) -> list[dict[str, Any]]:
    """A prompt's messages (system ones aside) as Responses `input` items."""
    return [item for segment in paired(messages) for item in _responses_items(segment)]


def chat_body(request: ChatRequest, endpoint: Endpoint) -> dict[str, Any]:
    """`POST /chat/completions`."""
    reasoning = endpoint.is_reasoning(request.model)
    body: dict[str, Any] = {
        "model": request.model,
        "messages": chat_messages(request.messages),
        "max_completion_tokens" if reasoning else "max_tokens": request.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    body.update(_sampling(request, reasoning))
    if request.sampling.stop:
        body["stop"] = list(request.sampling.stop)
    if request.tools and endpoint.supports_tools:
        body["tools"] = [{"type": "function", "function": _function(t)} for t in request.tools]
    return body


def completions_body(request: ChatRequest, endpoint: Endpoint) -> dict[str, Any]:
    """`POST /completions`: the conversation rendered by the template; its stops come last."""
    stop = list(dict.fromkeys((*request.sampling.stop, *endpoint.template.stop)))[:MAX_STOP]
    body: dict[str, Any] = {
        "model": request.model,
        "prompt": endpoint.template.render(request.messages),
        "max_tokens": request.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    body.update(_sampling(request, reasoning=False))
    if stop:
        body["stop"] = stop
    return body


def responses_body(request: ChatRequest, endpoint: Endpoint) -> dict[str, Any]:
    """`POST /responses`: system prompt as `instructions`, the rest as `input`.

    The Responses API has no stop, penalties, seed or logit_bias; `store` is off because the
    bot keeps the history itself.
    """
    reasoning = endpoint.is_reasoning(request.model)
    system = "\n\n".join(m.text for m in request.messages if m.role == "system")
    s = request.sampling
    body: dict[str, Any] = {
        "model": request.model,
        "input": responses_items(m for m in request.messages if m.role != "system"),
        "max_output_tokens": request.max_tokens,
        "stream": True,
        "store": False,
    }
    if system:
        body["instructions"] = system
    if not reasoning:
        body.update(_present({"temperature": s.temperature, "top_p": s.top_p}))
    body.update(_present({"user": request.user}))
    if request.tools and endpoint.supports_tools:
        body["tools"] = [{"type": "function", **_function(t)} for t in request.tools]
    return body


BODIES = {"chat": chat_body, "completions": completions_body, "responses": responses_body}


def request_body(request: ChatRequest, endpoint: Endpoint) -> dict[str, Any]:
    """The body for the endpoint's API mode."""
    return BODIES[endpoint.api](request, endpoint)
