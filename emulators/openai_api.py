"""In-process emulator of an OpenAI-compatible HTTP API for end-to-end tests.

A real aiohttp server on 127.0.0.1 (random port) serving ``GET /v1/models``,
``POST /v1/chat/completions``, ``POST /v1/completions`` and ``POST /v1/responses`` with
OpenAI's JSON and SSE shapes, auth, validation, context-window checks and usage accounting
(o200k_base). Azure OpenAI's paths (``/openai/deployments/{deployment}/chat/completions`` and
``/completions``, ``/openai/responses``) answer the same, with ``api-key`` auth and a required
``api-version``. Reasoning models reject ``max_tokens`` and the sampling knobs, as OpenAI does.
Answers are scripted with :class:`Reply` objects (``enqueue`` / ``responder``), which can
also inject delays, HTTP errors, truncated or hanging streams and malformed events.
Every request is recorded so tests can assert exactly what the client sent. Image content
parts are validated and costed by ``openai_images`` (``images``); ``POST /v1/audio/transcriptions``
is served by ``openai_audio`` (``audio``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from aiohttp import web

from emulators import openai_audio
from emulators import openai_errors as errors
from emulators import openai_quirks as quirks
from emulators.openai_errors import ApiError
from emulators.openai_image_generation import IMAGES_PATH, handle_images
from emulators.openai_images import ImageRules
from emulators.openai_replies import RecordedRequest, Reply
from emulators.openai_responses import (
    ResponsesCompletion,
    ResponsesWriter,
    input_messages,
    validate_responses,
)
from emulators.openai_stream import (
    Completion,
    EmulatorStopping,
    Kind,
    Pacer,
    StreamWriter,
    abort_connection,
    send_full,
)
from emulators.openai_tokens import (
    apply_limits,
    content_text,
    count_tokens,
    requested_max_tokens,
)
from emulators.openai_tokens import (
    count_prompt_tokens as _count_prompt_tokens,
)
from emulators.openai_tools import (
    ToolCallsReply,
    send_full_tools,
    tool_writer,
    validate_chat_tools,
    validate_responses_tools,
)

__all__ = ["OpenAIEmulator", "RecordedRequest", "Reply"]

CHAT_PATH = "/v1/chat/completions"
SUMMARY_MARKER = "running summary"
LEGACY_PATH = "/v1/completions"
RESPONSES_PATH = "/v1/responses"
AZURE_PREFIX = "/openai/"
AZURE_DEPLOYMENT = "/openai/deployments/{deployment}"
AZURE_API_VERSION = "2024-10-21"
VISION_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini", "gpt-5", "gpt-5-mini")
REASONING_MODELS = ("o1", "o3-mini", "o4-mini", "gpt-5", "gpt-5-mini")
REASONING_REJECTS = ("temperature", "top_p", "presence_penalty", "frequency_penalty", "logit_bias")
MODELS_PATH = "/v1/models"
SHUTDOWN_GRACE_SECONDS = 1.0
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _Prompt:
    """What a validated request asks for, independent of the endpoint."""

    kind: Kind
    model: str
    prompt_tokens: int
    default_text: str


class OpenAIEmulator:
    """A scriptable OpenAI-compatible server; use ``async with`` or ``start()``/``stop()``."""

    def __init__(
        self,
        api_key: str = "sk-test-key",
        *,
        models: Iterable[str] = ("gpt-4o-mini", "gpt-4o", "test-model"),
        context_window: int = 128_000,
    ) -> None:
        self.api_key = api_key
        self.models = list(models)
        self.context_window = context_window
        self.context_windows: dict[str, int] = {}
        self.reasoning_models = set(REASONING_MODELS)
        self.azure_api_version = AZURE_API_VERSION
        self.azure_deployments: dict[str, str] = {}  # deployment → model; default: same name
        # Simulate a model whose tokenizer counts more (or less) than o200k: prompt tokens of
        # that model are scaled (rounded up) in usage and in the context-window check.
        self.token_factors: dict[str, float] = {}
        # Image parts: only these models accept them (``images.vision_models``);
        # ``images.require_data_urls`` refuses any URL but ``data:``.
        self.images = ImageRules(set(VISION_MODELS))
        self.audio = openai_audio.TranscriptionService()  # /v1/audio/transcriptions
        self.responder: Callable[[dict[str, Any]], Reply | str] | None = None
        self.requests: list[RecordedRequest] = []
        self.open_streams = 0
        self.base_url = ""
        self._queue: deque[Reply] = deque()
        self._arrived = asyncio.Event()
        self._pacer = Pacer()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    async def start(self, port: int = 0) -> None:
        """Start listening on 127.0.0.1 (a random port unless given) and set ``base_url``."""
        # Bodies up to 64 MB: base64 images in chat bodies, 25 MB audio uploads (413 past it).
        app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
        app.router.add_get(MODELS_PATH, self._handle_models)
        app.router.add_post(CHAT_PATH, self._handle_chat)
        app.router.add_post(LEGACY_PATH, self._handle_legacy)
        app.router.add_post(RESPONSES_PATH, self._handle_responses)
        app.router.add_post(openai_audio.PATH, self.audio.handle)
        app.router.add_post(IMAGES_PATH, handle_images)
        app.router.add_post(AZURE_DEPLOYMENT + "/chat/completions", self._handle_chat)
        app.router.add_post(AZURE_DEPLOYMENT + "/completions", self._handle_legacy)
        app.router.add_post(AZURE_PREFIX + "responses", self._handle_responses)
        self._pacer = Pacer()
        self._runner = web.AppRunner(
            app,
            handler_cancellation=True,
            shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
            access_log=None,
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/v1"

    async def stop(self) -> None:
        """Stop the server quickly, ending hanging streams and delays."""
        if self._runner is None:
            return
        self._pacer.stopping.set()
        pending = {t for t in self._handlers if not t.done()}
        if pending:
            _, still = await asyncio.wait(pending, timeout=SHUTDOWN_GRACE_SECONDS)
            for task in still:
                task.cancel()
        await self._runner.cleanup()
        self._runner = None

    async def __aenter__(self) -> OpenAIEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- scripting and inspection -------------------------------------------------------------

    def enqueue(self, *replies: Reply | str) -> None:
        """Queue scripted replies (FIFO); a plain string means ``Reply(text=s)``."""
        self._queue.extend(_as_reply(r) for r in replies)

    def chat_requests(self) -> list[dict[str, Any]]:
        """JSON bodies of every ``POST /v1/chat/completions`` received, in order."""
        return self.bodies(CHAT_PATH)

    def bodies(self, path: str) -> list[dict[str, Any]]:
        """JSON bodies of every POST to ``path`` (e.g. ``/v1/responses``), in order."""
        return [r.body for r in self.requests if r.path == path and r.method == "POST"]

    def count_prompt_tokens(self, messages: list[dict[str, Any]]) -> int:
        """Prompt tokens the emulator reports for ``messages`` (OpenAI cookbook rules)."""
        return _count_prompt_tokens(messages)

    def wait_for_requests(self, n: int, timeout: float = 10.0) -> Coroutine[Any, Any, None]:
        """Wait until at least ``n`` requests were recorded (``TimeoutError`` otherwise)."""
        return self._wait_for_count(n, timeout)

    async def _wait_for_count(self, n: int, limit: float) -> None:
        try:
            async with asyncio.timeout(limit):
                while len(self.requests) < n:
                    self._arrived.clear()
                    await self._arrived.wait()
        except TimeoutError:
            raise TimeoutError(
                f"expected {n} requests within {limit}s, got {len(self.requests)}"
            ) from None

    # --- HTTP plumbing --------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        """Record, authenticate and turn ``ApiError``/shutdown into responses."""
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            if request.path.startswith(("/v1/", AZURE_PREFIX)):
                await self._record(request)
                self._check_auth(request)
            return await handler(request)
        except ApiError as exc:
            return _error_response(exc)
        except (web.HTTPNotFound, web.HTTPMethodNotAllowed) as exc:
            error = errors.not_found_path_error(request.method, request.path)
            error.status = exc.status
            return _error_response(error)
        except EmulatorStopping:
            abort_connection(request)
            return web.Response(status=503)
        except ConnectionError:
            abort_connection(request)
            return web.Response(status=499)
        finally:
            if task is not None:
                self._handlers.discard(task)

    async def _record(self, request: web.Request) -> None:
        parsed = _parse_json(await request.read())
        body = parsed if isinstance(parsed, dict) else {}
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.requests.append(
            RecordedRequest(
                request.path, headers, body, time.time(), request.method, dict(request.query)
            )
        )
        self._arrived.set()

    def _check_auth(self, request: web.Request) -> None:
        if request.path.startswith(AZURE_PREFIX):
            quirks.check_azure(request.headers, request.query, self.api_key, self.azure_api_version)
            return
        header = request.headers.get("Authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise errors.missing_key_error()
        if key != self.api_key:
            raise errors.invalid_key_error(key)

    # --- endpoints ----------------------------------------------------------------------------

    async def _handle_models(self, request: web.Request) -> web.StreamResponse:
        created = int(time.time())
        data = [
            {"id": m, "object": "model", "created": created, "owned_by": "emulator"}
            for m in self.models
        ]
        return web.json_response({"object": "list", "data": data})

    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        body = self._for_deployment(request, await _json_body(request))
        errors.validate_chat(body)
        image_tokens = self.images.check_chat(body)
        validate_chat_tools(body)
        messages: list[dict[str, Any]] = body["messages"]
        users = [m for m in messages if m.get("role") == "user"]
        last_user = content_text(users[-1].get("content")) if users else ""
        factor = self.token_factors.get(str(body["model"]), 1.0)
        tokens = math.ceil(_count_prompt_tokens(messages) * factor) + image_tokens
        default = summary_text(messages) if is_summary_request(body) else f"Echo: {last_user}"
        prompt = _Prompt("chat", body["model"], tokens, default)
        return await self._serve(request, body, prompt)

    async def _handle_legacy(self, request: web.Request) -> web.StreamResponse:
        body = self._for_deployment(request, await _json_body(request))
        errors.validate_legacy(body)
        raw_prompt = body["prompt"]
        text = raw_prompt if isinstance(raw_prompt, str) else "\n".join(raw_prompt)
        lines = text.splitlines()
        prompt = _Prompt(
            "legacy", body["model"], count_tokens(text), f"Echo: {lines[-1] if lines else ''}"
        )
        return await self._serve(request, body, prompt)

    async def _handle_responses(self, request: web.Request) -> web.StreamResponse:
        body = await _json_body(request)
        validate_responses(body)
        image_tokens = self.images.check_responses(body)
        validate_responses_tools(body)
        messages = input_messages(body)
        users = [m for m in messages if m["role"] == "user"]
        last_user = users[-1]["content"] if users else ""
        prompt = _Prompt(
            "responses",
            body["model"],
            _count_prompt_tokens(messages) + image_tokens,
            f"Echo: {last_user}",
        )
        return await self._serve(request, body, prompt)

    def _for_deployment(self, request: web.Request, body: dict[str, Any]) -> dict[str, Any]:
        """On an Azure path the deployment decides the model, whatever the body says."""
        deployment = request.match_info.get("deployment")
        if deployment is None:
            return body
        return {**body, "model": self.azure_deployments.get(deployment, deployment)}

    async def _serve(
        self, request: web.Request, body: dict[str, Any], prompt: _Prompt
    ) -> web.StreamResponse:
        """Pick the scripted reply, run model/context checks and send the answer."""
        reply, from_queue = self._next_reply(body, prompt.default_text)
        if reply.status is not None:
            raise errors.scripted_error(
                reply.status,
                message=reply.error_message,
                type_=reply.error_type,
                code=reply.error_code,
                retry_after=reply.retry_after,
                api_key=self.api_key,
                model=prompt.model,
            )
        try:
            self._check_model_and_context(body, prompt)
        except ApiError:
            if from_queue:
                self._queue.appendleft(reply)
            raise
        completion = _build_completion(body, prompt, reply)
        if reply.hold is not None:
            await reply.hold.wait()
        stream = body.get("stream") is True
        if stream:
            self.open_streams += 1
        try:
            if reply.hang_before_headers:
                await self._pacer.hang(request)
                abort_connection(request)
                return web.Response(status=499)
            if stream:
                writer = ResponsesWriter if prompt.kind == "responses" else StreamWriter
                writer = tool_writer(writer, reply)
                return await writer(request, reply, completion, self._pacer).run()
            if isinstance(reply, ToolCallsReply):
                return await send_full_tools(completion, reply)
            return await send_full(request, reply, completion, self._pacer)
        finally:
            if stream:
                self.open_streams -= 1

    def _next_reply(self, body: dict[str, Any], default_text: str) -> tuple[Reply, bool]:
        if self._queue:
            return self._queue.popleft(), True
        if self.responder is not None:
            return _as_reply(self.responder(body)), False
        return Reply(text=default_text), False

    def _check_model_and_context(self, body: dict[str, Any], prompt: _Prompt) -> None:
        if prompt.model not in self.models and prompt.model not in self.reasoning_models:
            raise errors.model_not_found_error(prompt.model)
        if prompt.model in self.reasoning_models:
            quirks.check_reasoning_parameters(body, REASONING_REJECTS)
        window = self.context_windows.get(prompt.model, self.context_window)
        requested = requested_max_tokens(body) or 0
        if prompt.prompt_tokens + requested > window:
            raise errors.context_length_error(window, prompt.prompt_tokens, requested)


# --- helpers ------------------------------------------------------------------------------------


def is_summary_request(body: dict[str, Any]) -> bool:
    """Whether a chat request asks for a conversation summary (the bot's summary call)."""
    messages = body.get("messages") or []
    first = messages[0] if messages and isinstance(messages[0], dict) else {}
    return first.get("role") == "system" and SUMMARY_MARKER in content_text(first.get("content"))


def summary_text(messages: list[dict[str, Any]]) -> str:
    """The default answer to a summary call: short, deterministic, naming the last line."""
    lines = content_text(messages[-1].get("content")).splitlines()
    return f"Summary of {len(lines)} lines, the last: {lines[-1][:60] if lines else ''}"


def _as_reply(reply: Reply | str) -> Reply:
    return Reply(text=reply) if isinstance(reply, str) else reply


def _parse_json(raw: bytes) -> Any:
    """Decode a JSON body; ``None`` when it is empty or not JSON."""
    if not raw:
        return None
    with contextlib.suppress(ValueError):
        return json.loads(raw)
    return None


async def _json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object (aiohttp caches the raw body), else a 400."""
    body = _parse_json(await request.read())
    if not isinstance(body, dict):
        raise errors.invalid_json_error()
    return body


def _error_response(exc: ApiError) -> web.Response:
    return web.json_response(exc.body(), status=exc.status, headers=exc.headers)


def _build_completion(body: dict[str, Any], prompt: _Prompt, reply: Reply) -> Completion:
    if reply.endless or reply.ignore_max_tokens:  # a server that does not honour max_tokens
        text, finish = reply.text, reply.finish_reason
        completion_tokens = len(text) // 4  # about right, without tokenizing a megabyte
    else:
        text, finish = apply_limits(reply.text, reply.finish_reason, body)
        completion_tokens = count_tokens(text)
    usage = {
        "prompt_tokens": prompt.prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt.prompt_tokens + completion_tokens,
    }
    if reply.usage:
        usage.update(reply.usage)
        if "total_tokens" not in reply.usage:
            usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    options = body.get("stream_options") or {}
    include_usage = bool(options.get("include_usage")) and not reply.omit_usage
    kind = ResponsesCompletion if prompt.kind == "responses" else Completion
    return kind(prompt.kind, prompt.model, text, finish, usage, include_usage)
