"""Request bodies of the three generation APIs, built from one `ChatRequest`.

Reasoning models (o1/o3/o4/gpt-5 style) take `max_completion_tokens` and reject the sampling
knobs (temperature, top_p, penalties, logit_bias), so those are left out for them. `n` is never
sent: a chat reply is one choice, and the server default is 1.
"""

from __future__ import annotations

from typing import Any

from bot.llm.endpoint import Endpoint
from bot.llm.types import ChatRequest

MAX_STOP = 4


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


def chat_body(request: ChatRequest, endpoint: Endpoint) -> dict[str, Any]:
    """`POST /chat/completions`."""
    reasoning = endpoint.is_reasoning(request.model)
    body: dict[str, Any] = {
        "model": request.model,
        "messages": [m.to_json() for m in request.messages],
        "max_completion_tokens" if reasoning else "max_tokens": request.max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    body.update(_sampling(request, reasoning))
    if request.sampling.stop:
        body["stop"] = list(request.sampling.stop)
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
    system = "\n\n".join(m.content for m in request.messages if m.role == "system")
    s = request.sampling
    body: dict[str, Any] = {
        "model": request.model,
        "input": [m.to_json() for m in request.messages if m.role != "system"],
        "max_output_tokens": request.max_tokens,
        "stream": True,
        "store": False,
    }
    if system:
        body["instructions"] = system
    if not reasoning:
        body.update(_present({"temperature": s.temperature, "top_p": s.top_p}))
    body.update(_present({"user": request.user}))
    return body


BODIES = {"chat": chat_body, "completions": completions_body, "responses": responses_body}


def request_body(request: ChatRequest, endpoint: Endpoint) -> dict[str, Any]:
    """The body for the endpoint's API mode."""
    return BODIES[endpoint.api](request, endpoint)
