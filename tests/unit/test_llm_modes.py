"""The three API modes and provider quirks against `httpx.MockTransport`: the exact request
(URL, query, headers, body) each mode sends, and how each mode's event stream is read."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bot.errors import (
    LLMConnectionError,
    LLMError,
    LLMProtocolError,
    LLMRateLimitError,
    LLMServerError,
)
from bot.llm.client import ChatClient
from bot.llm.endpoint import Endpoint, PromptTemplate
from bot.llm.types import ChatMessage, ChatRequest, Sampling, StreamEvent, Usage
from bot.model_profile import DEFAULT_MESSAGE_TEMPLATE, DEFAULT_STOP, DEFAULT_TEMPLATE, ApiMode

KEY = "sk-modes-SECRET-1234"
TEMPLATE = PromptTemplate(DEFAULT_TEMPLATE, DEFAULT_MESSAGE_TEMPLATE, DEFAULT_STOP)
MESSAGES = (
    ChatMessage("system", "Be brief."),
    ChatMessage("user", "Hi"),
    ChatMessage("assistant", "Hello!"),
    ChatMessage("user", "Weather?"),
)
SAMPLING = Sampling(
    temperature=0.5,
    top_p=0.9,
    presence_penalty=0.1,
    frequency_penalty=-0.2,
    seed=7,
    stop=("###",),
    logit_bias=(("50256", -100.0),),
)
FULL = ChatRequest("gpt-4o-mini", MESSAGES, 64, SAMPLING, user="u-hash")
SSE = {"content-type": "text/event-stream"}
CHAT_OK = (
    'data: {"choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n'
    "data: [DONE]\n\n"
)


def endpoint(api: ApiMode = "chat", **fields: Any) -> Endpoint:
    values: dict[str, Any] = {
        "base_url": "http://llm.test/v1",
        "model": "gpt-4o-mini",
        "context_tokens": 8000,
        "template": TEMPLATE,
        "api": api,
        "api_key": KEY,
    }
    values.update(fields)
    return Endpoint(**values)


Run = Callable[..., Any]


@pytest.fixture
async def run() -> AsyncIterator[Run]:
    """run(endpoint, request, body) → (events, the one httpx.Request sent)."""
    clients: list[httpx.AsyncClient] = []

    async def go(
        where: Endpoint, request: ChatRequest = FULL, body: str = CHAT_OK
    ) -> tuple[list[StreamEvent], httpx.Request]:
        seen: list[httpx.Request] = []

        def handle(sent: httpx.Request) -> httpx.Response:
            seen.append(sent)
            return httpx.Response(200, headers=SSE, content=body.encode())

        http = httpx.AsyncClient(transport=httpx.MockTransport(handle))
        clients.append(http)
        client = ChatClient(http, endpoint=where, max_retries=0)
        events = [e async for e in client.stream(request)]
        return events, seen[0]

    yield go
    for http in clients:
        await http.aclose()


def body_of(request: httpx.Request) -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(request.content)
    return parsed


# --- the exact request of each mode ---------------------------------------------------------


async def test_chat_mode_sends_every_sampling_parameter_and_never_n(run: Run) -> None:
    _, sent = await run(endpoint())
    assert str(sent.url) == "http://llm.test/v1/chat/completions"
    assert body_of(sent) == {
        "model": "gpt-4o-mini",
        "messages": [{"role": m.role, "content": m.content} for m in MESSAGES],
        "max_tokens": 64,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
        "top_p": 0.9,
        "presence_penalty": 0.1,
        "frequency_penalty": -0.2,
        "logit_bias": {"50256": -100.0},
        "seed": 7,
        "user": "u-hash",
        "stop": ["###"],
    }


@pytest.mark.parametrize("model", ["o1", "o3-mini", "o4-mini-high", "gpt-5", "openai/gpt-5-mini"])
async def test_reasoning_models_get_max_completion_tokens_and_no_sampling_knobs(
    run: Run, model: str
) -> None:
    request = ChatRequest(model, MESSAGES, 64, SAMPLING, user="u-hash")
    _, sent = await run(endpoint(), request)
    body = body_of(sent)
    assert body["max_completion_tokens"] == 64
    for absent in ("max_tokens", "temperature", "top_p", "presence_penalty", "logit_bias"):
        assert absent not in body
    assert (body["seed"], body["stop"], body["user"]) == (7, ["###"], "u-hash")


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-5-chat-latest", "o200-custom", "llama3"])
async def test_other_models_keep_max_tokens(run: Run, model: str) -> None:
    _, sent = await run(endpoint(), ChatRequest(model, MESSAGES, 64))
    assert body_of(sent)["max_tokens"] == 64


async def test_an_explicit_reasoning_setting_beats_the_name(run: Run) -> None:
    _, sent = await run(endpoint(reasoning=True), ChatRequest("my-thinker", MESSAGES, 64))
    assert "max_completion_tokens" in body_of(sent)
    _, sent = await run(endpoint(reasoning=False), ChatRequest("o3-mini", MESSAGES, 64))
    assert "max_tokens" in body_of(sent)


async def test_completions_mode_renders_the_prompt_and_merges_stop_sequences(run: Run) -> None:
    body = 'data: {"choices":[{"index":0,"text":"Sunny.","finish_reason":"stop"}]}\n\n'
    events, sent = await run(endpoint("completions"), FULL, body + "data: [DONE]\n\n")
    assert str(sent.url) == "http://llm.test/v1/completions"
    assert body_of(sent) == {
        "model": "gpt-4o-mini",
        "prompt": "Be brief.\n\nUser: Hi\n\nAssistant: Hello!\n\nUser: Weather?\n\nAssistant:",
        "max_tokens": 64,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.5,
        "top_p": 0.9,
        "presence_penalty": 0.1,
        "frequency_penalty": -0.2,
        "logit_bias": {"50256": -100.0},
        "seed": 7,
        "user": "u-hash",
        "stop": ["###", "\nUser:"],
    }
    assert events == [StreamEvent(text="Sunny.", finish_reason="stop")]


def test_a_custom_template_renders_roles_and_skips_an_empty_system_prompt() -> None:
    template = PromptTemplate("<s>{system}</s>\n{messages}### Bot:", "### {role}: {content}\n", ())
    rendered = template.render((ChatMessage("user", "a {b}"), ChatMessage("assistant", "c")))
    assert rendered == "<s></s>\n### User: a {b}\n### Assistant: c\n### Bot:"


async def test_completions_stop_sequences_are_capped_at_four(run: Run) -> None:
    request = ChatRequest("m", MESSAGES, 64, Sampling(stop=("a", "b", "c", "\nUser:")))
    many = PromptTemplate(DEFAULT_TEMPLATE, DEFAULT_MESSAGE_TEMPLATE, ("\nUser:", "x", "y"))
    _, sent = await run(endpoint("completions", template=many), request)
    assert body_of(sent)["stop"] == ["a", "b", "c", "\nUser:"]


async def test_responses_mode_sends_instructions_and_input(run: Run) -> None:
    done = 'data: {"type":"response.completed","response":{"status":"completed"}}\n\n'
    _, sent = await run(endpoint("responses"), FULL, done)
    assert str(sent.url) == "http://llm.test/v1/responses"
    assert body_of(sent) == {
        "model": "gpt-4o-mini",
        "instructions": "Be brief.",
        "input": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Weather?"},
        ],
        "max_output_tokens": 64,
        "stream": True,
        "store": False,
        "temperature": 0.5,
        "top_p": 0.9,
        "user": "u-hash",
    }


async def test_responses_mode_leaves_sampling_out_for_reasoning_models(run: Run) -> None:
    done = 'data: {"type":"response.completed","response":{}}\n\n'
    request = ChatRequest("o4-mini", MESSAGES[1:], 64, SAMPLING)
    _, sent = await run(endpoint("responses"), request, done)
    assert body_of(sent) == {
        "model": "o4-mini",
        "input": [{"role": m.role, "content": m.content} for m in MESSAGES[1:]],
        "max_output_tokens": 64,
        "stream": True,
        "store": False,
    }


# --- providers: Azure, headers ---------------------------------------------------------------


AZURE = {"base_url": "https://res.openai.azure.com", "azure_api_version": "2024-10-21"}


@pytest.mark.parametrize(
    ("api", "path"),
    [
        ("chat", "/openai/deployments/prod-4o/chat/completions"),
        ("completions", "/openai/deployments/prod-4o/completions"),
        ("responses", "/openai/responses"),
    ],
)
async def test_azure_uses_the_deployment_path_api_version_and_api_key_header(
    run: Run, api: ApiMode, path: str
) -> None:
    where = endpoint(api, azure_deployment="prod-4o", **AZURE)
    body = 'data: {"type":"response.completed","response":{}}\n\n' if api == "responses" else None
    _, sent = await run(where, FULL, body or CHAT_OK)
    assert sent.url.path == path
    assert dict(sent.url.params) == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == KEY
    assert "authorization" not in sent.headers


async def test_azure_deployment_defaults_to_the_model_name(run: Run) -> None:
    _, sent = await run(endpoint(**AZURE), ChatRequest("gpt-4o", MESSAGES, 64))
    assert sent.url.path == "/openai/deployments/gpt-4o/chat/completions"


async def test_extra_headers_are_sent_with_bearer_auth(run: Run) -> None:
    headers = (("HTTP-Referer", "https://bot.example"), ("X-Title", "memorybot"))
    _, sent = await run(endpoint(headers=headers))
    assert sent.headers["http-referer"] == "https://bot.example"
    assert sent.headers["x-title"] == "memorybot"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.url.params.get("api-version") is None


def test_the_api_key_and_headers_are_not_in_the_endpoint_repr() -> None:
    assert KEY not in repr(endpoint()) and KEY not in repr(endpoint(**AZURE))
    assert "tok-123" not in repr(endpoint(headers=(("X-Token", "tok-123"),)))


# --- reading the streams ---------------------------------------------------------------------


def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return "data: " + json.dumps(
        {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    )


async def test_reasoning_content_is_a_separate_delta_never_part_of_the_text(run: Run) -> None:
    body = "\n\n".join(
        [
            chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
            chunk({"content": None, "reasoning_content": "Think "}),
            chunk({"reasoning": "more."}),  # OpenRouter's name for it
            chunk({"content": "Answer."}),
            chunk({}, "stop"),
            "data: [DONE]",
        ]
    )
    events, _ = await run(endpoint(), FULL, body + "\n\n")
    assert events == [
        StreamEvent(reasoning="Think "),
        StreamEvent(reasoning="more."),
        StreamEvent(text="Answer."),
        StreamEvent(finish_reason="stop"),
    ]


async def test_only_the_first_choice_is_read(run: Run) -> None:
    two = {
        "choices": [
            {"index": 1, "delta": {"content": "other"}, "finish_reason": None},
            {"index": 0, "delta": {"content": "mine"}, "finish_reason": None},
        ]
    }
    body = f"data: {json.dumps(two)}\n\n{chunk({}, 'stop')}\n\ndata: [DONE]\n\n"
    events, _ = await run(endpoint(), FULL, body)
    assert [e.text for e in events if e.text] == ["mine"]


def typed(kind: str, **payload: Any) -> str:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **payload})}\n\n"


async def test_responses_stream_yields_text_reasoning_finish_and_usage(run: Run) -> None:
    final = {"status": "completed", "usage": {"input_tokens": 12, "output_tokens": 3}}
    body = (
        typed("response.created", response={"status": "in_progress"})
        + ": ping\n\n"
        + typed("response.reasoning_summary_text.delta", delta="hmm")
        + typed("response.output_text.delta", delta="Hel")
        + typed("response.output_text.delta", delta="lo")
        + typed("response.output_text.done", text="Hello")
        + typed("response.completed", response=final)
    )
    events, _ = await run(endpoint("responses"), FULL, body)
    assert events == [
        StreamEvent(reasoning="hmm"),
        StreamEvent(text="Hel"),
        StreamEvent(text="lo"),
        StreamEvent(finish_reason="stop", usage=Usage(12, 3)),
    ]


async def test_an_incomplete_response_for_another_reason_reports_that_reason(run: Run) -> None:
    final = {"status": "incomplete", "incomplete_details": {"reason": "content_filter"}}
    events, _ = await run(endpoint("responses"), FULL, typed("response.incomplete", response=final))
    assert events == [StreamEvent(finish_reason="content_filter")]


async def test_an_incomplete_response_is_cut_by_the_token_limit(run: Run) -> None:
    final = {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    body = typed("response.output_text.delta", delta="Half") + typed(
        "response.incomplete", response=final
    )
    events, _ = await run(endpoint("responses"), FULL, body)
    assert events[-1] == StreamEvent(finish_reason="length")


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (
            typed("response.failed", response={"error": {"code": "server_error", "message": "x"}}),
            LLMServerError,
        ),
        (typed("error", code="rate_limit_exceeded", message="slow down"), LLMRateLimitError),
        (typed("response.output_text.delta", delta="no end"), LLMConnectionError),
        (typed("response.failed", response=None), LLMServerError),
        ("event: response.output_text.delta\ndata: {broken\n\n", LLMProtocolError),
        ("data: [1, 2]\n\n", LLMProtocolError),
    ],
    ids=["failed", "error-event", "no-completed-event", "failed-no-details", "bad-json", "array"],
)
async def test_responses_failures_raise_typed_errors(
    run: Run, event: str, kind: type[LLMError]
) -> None:
    with pytest.raises(kind):
        await run(endpoint("responses"), FULL, event)


async def test_a_failed_response_redacts_the_api_key(run: Run) -> None:
    error = {"code": "server_error", "message": f"bad key {KEY}"}
    with pytest.raises(LLMServerError) as info:
        await run(endpoint("responses"), FULL, typed("response.failed", response={"error": error}))
    assert KEY not in str(info.value)
