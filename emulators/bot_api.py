"""In-process emulator of the Telegram Bot API for end-to-end tests.

A real aiohttp HTTP server on 127.0.0.1 that speaks the Bot API well enough for the real
python-telegram-bot ``Application`` to run against it (``base_url=emu.base_url``). Tests inject
user activity (``send_text``, ``press_button``...), then assert on what the bot did (``calls``,
``bot_messages``, ``drafts``). Telegram's validation, error texts and flood limits are enforced;
faults can be scripted with ``fail_next`` and ``drop_next``. After ``setWebhook`` the updates are
POSTed to the webhook instead (``webhooks``: delivery log and load-balancing targets).
``latency`` (seconds, default 0) delays every answer to model Telegram's round trip; a
``getUpdates`` long poll waits as usual and only its answer is delayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from emulators.bot_api_files import FileInjectors, FileStore
from emulators.bot_api_methods import BotMethods
from emulators.bot_api_state import DEFAULT_GROUP_USER_ID, EmulatorState
from emulators.bot_api_support import (
    ApiCall,
    ApiError,
    ChatMessage,
    Fault,
    FloodLimiter,
    UploadedFile,
    normalize_params,
)
from emulators.bot_api_text import detect_entities
from emulators.bot_api_webhook import WebhookDeliverer

__all__ = ["ApiCall", "BotAPIEmulator", "ChatMessage"]

UNAUTHORIZED = ApiError("Unauthorized", 401)
NOT_FOUND = ApiError("Not Found", 404)


class BotAPIEmulator(FileInjectors):
    """A fake Telegram Bot API server with a user-side API for tests (media: bot_api_files)."""

    def __init__(
        self,
        token: str = "123456:TEST-TOKEN",
        *,
        bot_username: str = "memory_test_bot",
        rate_limits: bool = True,
        private_burst: int = 3,
        private_rate: float = 1.0,
        group_burst: int = 5,
        group_rate: float = 20 / 60,
        global_rate: float = 30.0,
        latency: float = 0.0,
    ) -> None:
        self.token = token
        self.latency = latency  # seconds added before every answer (a network round trip)
        self.bot_id = int(token.split(":", 1)[0])
        self.bot_username = bot_username
        self.base_url = ""
        self.calls: list[ApiCall] = []
        self.state = EmulatorState(self.bot_id, bot_username)
        self.limiter = FloodLimiter(
            rate_limits, private_burst, private_rate, group_burst, group_rate, global_rate
        )
        self._methods = BotMethods(self.state, self.limiter)
        self.files = FileStore(token)
        self._methods.table["getfile"] = ("getFile", self.files.m_getFile)
        self._faults: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self.webhooks = WebhookDeliverer(self.state)
        self._delivery: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start serving on a random local port and set ``base_url``."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle)
        app.router.add_get("/file/bot{token}/{path:.+}", self.files.serve)
        app.router.add_route("*", "/{tail:.*}", self._unknown_path)
        runner = web.AppRunner(
            app, handler_cancellation=True, shutdown_timeout=0.5, access_log=None
        )
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._runner = runner
        port = runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/bot"
        self._delivery = asyncio.create_task(self.webhooks.run())

    async def stop(self) -> None:
        """Release long polls and shut the server down."""
        self.state.stopping = True
        self.state.notify()
        if self._delivery is not None:
            self.webhooks.stopped = True
            await self._delivery
            self._delivery = None
        if self._runner is not None:
            with contextlib.suppress(AssertionError):
                await self.wait_for(lambda: self.state.active_polls == 0, timeout=1.0)
            await asyncio.sleep(0.02)  # let the released long polls flush their answers
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> BotAPIEmulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ HTTP

    async def _unknown_path(self, request: web.Request) -> web.Response:
        return web.json_response(NOT_FOUND.payload(), status=404)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw_method = request.match_info["method"]
        entry = self._methods.table.get(raw_method.lower())
        name = entry[0] if entry else raw_method
        try:
            params = normalize_params(await _read_params(request))
        except ApiError as exc:
            await self._delay()
            return self._answer(name, {}, exc.status, exc.payload())
        fault = self._take_fault(name, params)
        if fault is not None and fault.status == 0:
            return await self._drop(request, name, params)
        try:
            if fault is not None:
                raise ApiError(fault.description, fault.status, fault.retry_after)
            if request.match_info["token"] != self.token:
                raise UNAUTHORIZED
            if entry is None:
                raise NOT_FOUND
            result = await entry[1](params)
        except ApiError as exc:
            await self._delay()
            return self._answer(name, params, exc.status, exc.payload())
        except Exception as exc:  # an emulator bug: answer 500 and keep it visible in ``calls``
            error = ApiError(f"Internal Server Error: {exc!r}", 500)
            return self._answer(name, params, 500, error.payload())
        await self._delay()
        return self._answer(name, params, 200, {"ok": True, "result": result})

    async def _delay(self) -> None:
        """Wait ``latency`` seconds before answering (nothing at all when it is 0)."""
        if self.latency > 0:
            await asyncio.sleep(self.latency)

    def _answer(
        self, method: str, params: dict[str, Any], status: int, body: dict[str, Any]
    ) -> web.Response:
        self.calls.append(ApiCall(method, params, status, body, time.monotonic()))
        self.state.notify()
        return web.json_response(body, status=status)

    async def _drop(
        self, request: web.Request, method: str, params: dict[str, Any]
    ) -> web.StreamResponse:
        self.calls.append(ApiCall(method, params, 0, {}, time.monotonic()))
        self.state.notify()
        if request.transport is not None:
            request.transport.abort()
        await asyncio.sleep(3600)  # cancelled by aiohttp once the connection is gone
        raise web.HTTPServiceUnavailable()

    def _take_fault(self, method: str, params: dict[str, Any]) -> Fault | None:
        for fault in self._faults:
            if fault.matches(method, params):
                fault.count -= 1
                if fault.count <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------------ fault scripting

    def fail_next(
        self,
        method: str,
        *,
        status: int,
        description: str,
        retry_after: int | None = None,
        count: int = 1,
        chat_id: int | None = None,
    ) -> None:
        """Answer the next ``count`` matching calls with the given error."""
        self._faults.append(Fault(method, count, status, description, retry_after, chat_id))

    def drop_next(self, method: str, count: int = 1) -> None:
        """Close the connection of the next ``count`` calls of ``method`` without answering."""
        self._faults.append(Fault(method, count))

    # ------------------------------------------------------------------ user side

    def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        chat_type: str = "private",
        chat_title: str | None = None,
        first_name: str = "Alice",
        username: str | None = None,
        reply_to_message_id: int | None = None,
        message_thread_id: int | None = None,
    ) -> dict[str, Any]:
        """A user writes ``text``; entities are detected like Telegram does.

        ``message_thread_id`` posts in that topic of a forum supergroup (the chat becomes a
        forum and the topic exists from then on), like a user writing inside a topic.
        """
        entities = detect_entities(text)
        fields: dict[str, Any] = {"text": text, "entities": entities or None}
        if message_thread_id is not None:
            self.state.topics.setdefault(chat_id, set()).add(message_thread_id)
            fields.update(message_thread_id=message_thread_id, is_topic_message=True)
        return self._inject(
            chat_id,
            user_id,
            chat_type,
            chat_title,
            first_name,
            username,
            reply_to_message_id,
            fields,
        )

    def send_message(
        self, chat_id: int, *, user_id: int | None = None, chat_type: str = "private", **fields: Any
    ) -> dict[str, Any]:
        """A user sends a message with arbitrary fields (sticker, photo, caption...)."""
        chat_title = fields.pop("chat_title", None)
        first_name = fields.pop("first_name", "Alice")
        username = fields.pop("username", None)
        reply_to = fields.pop("reply_to_message_id", None)
        if isinstance(fields.get("text"), str) and "entities" not in fields:
            fields["entities"] = detect_entities(fields["text"]) or None
        return self._inject(
            chat_id, user_id, chat_type, chat_title, first_name, username, reply_to, fields
        )

    def _inject(
        self,
        chat_id: int,
        user_id: int | None,
        chat_type: str,
        chat_title: str | None,
        first_name: str,
        username: str | None,
        reply_to: int | None,
        fields: dict[str, Any],
    ) -> dict[str, Any]:
        user = self._user(chat_id, user_id, chat_type, first_name, username)
        self.state.ensure_chat(chat_id, chat_type, chat_title, user)
        message = self.state.build_message(chat_id, user, reply_to, fields)
        self.state.messages[chat_id][message["message_id"]] = message
        self.state.queue_update("message", message)
        return message

    def _user(
        self,
        chat_id: int,
        user_id: int | None,
        chat_type: str,
        first_name: str,
        username: str | None,
    ) -> dict[str, Any]:
        if user_id is None:
            user_id = chat_id if chat_type == "private" else DEFAULT_GROUP_USER_ID
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username is not None:
            user["username"] = username
        user["language_code"] = "en"
        return user

    def upgrade_to_supergroup(
        self,
        group_id: int,
        supergroup_id: int,
        *,
        user_id: int = DEFAULT_GROUP_USER_ID,
        first_name: str = "Alice",
        supergroup_first: bool = False,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A member upgrades a group to a supergroup, as Telegram reports it: a service message
        with ``migrate_to_chat_id`` in the old group and one with ``migrate_from_chat_id`` in
        the new supergroup (queued in either order). The supergroup numbers its messages from
        1; from now on every call naming the old group answers 400 with
        ``parameters.migrate_to_chat_id``. Returns (old group's message, supergroup's message).
        """
        group = self.state.chats[group_id]
        user = self._user(group_id, user_id, "group", first_name, None)
        self.state.ensure_chat(supergroup_id, "supergroup", group.get("title"), user)
        in_group = self.state.build_message(group_id, user, None, {})
        in_group["migrate_to_chat_id"] = supergroup_id
        in_supergroup = self.state.build_message(supergroup_id, user, None, {})
        in_supergroup["migrate_from_chat_id"] = group_id
        for message in (in_group, in_supergroup):
            self.state.messages[message["chat"]["id"]][message["message_id"]] = message
        self.state.migrated[group_id] = supergroup_id
        first, second = (in_supergroup, in_group) if supergroup_first else (in_group, in_supergroup)
        self.state.queue_update("message", first)
        self.state.queue_update("message", second)
        return in_group, in_supergroup

    def send_again(self, message: dict[str, Any]) -> dict[str, Any]:
        """Queue a message once more under a new update id (a duplicate service message)."""
        return self.state.queue_update("message", message)

    def edit_text(self, chat_id: int, message_id: int, text: str) -> dict[str, Any]:
        """The user edits their earlier message; queues an ``edited_message`` update."""
        message = self.state.find_message(chat_id, message_id)
        if message is None or message["from"].get("is_bot"):
            raise KeyError(f"no user message {message_id} in chat {chat_id}")
        message["text"] = text
        message["edit_date"] = int(time.time())
        entities = detect_entities(text)
        if entities:
            message["entities"] = entities
        else:
            message.pop("entities", None)
        self.state.queue_update("edited_message", message)
        return message

    def press_button(
        self, chat_id: int, message_id: int, data: str, *, user_id: int | None = None
    ) -> dict[str, Any]:
        """The user presses an inline button with ``data`` under a message."""
        message = self.state.find_message(chat_id, message_id)
        if message is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        chat_type = self.state.chats[chat_id]["type"]
        query_id = uuid.uuid4().hex[:16]
        self.state.callback_queries[query_id] = False
        query = {
            "id": query_id,
            "from": self._user(chat_id, user_id, chat_type, "Alice", None),
            "message": message,
            "chat_instance": str(abs(chat_id) * 7919),
            "data": data,
        }
        queued: dict[str, Any] = self.state.queue_update("callback_query", query)["callback_query"]
        return queued

    def redeliver(self, update_id: int) -> None:
        """Queue an already delivered update again with the same ``update_id``."""
        self.state.redeliver(update_id)

    # ------------------------------------------------------------------ inspection

    def calls_for(self, method: str) -> list[ApiCall]:
        """Calls of ``method`` (case-insensitive), in order."""
        return [call for call in self.calls if call.method.lower() == method.lower()]

    def bot_messages(self, chat_id: int) -> list[ChatMessage]:
        """Messages the bot sent in ``chat_id``, in order, with their current text."""
        return list(self.state.bot_messages.get(chat_id, []))

    def drafts(self, chat_id: int) -> list[dict[str, Any]]:
        """``sendMessageDraft`` calls accepted for ``chat_id``."""
        return list(self.state.drafts.get(chat_id, []))

    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed via ``offset``."""
        return len(self.state.queue)

    async def wait_for(
        self,
        predicate: Callable[[], bool],
        timeout: float = 10.0,  # noqa: ASYNC109, RUF100 - part of the public API
    ) -> None:
        """Wait until ``predicate()`` holds, re-checking on every state change."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            event = self.state.event
            if predicate():
                return
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(self._timeout_report(predicate, timeout))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(remaining, 0.1))

    def _timeout_report(self, predicate: Callable[[], bool], timeout: float) -> str:
        try:
            source = inspect.getsource(predicate).strip()
        except (OSError, TypeError):
            source = repr(predicate)
        recent = [f"{c.method} -> {c.status}" for c in self.calls[-8:]]
        chats = {cid: [m.text[:40] for m in msgs] for cid, msgs in self.state.bot_messages.items()}
        return (
            f"condition not met within {timeout}s: {source}\n"
            f"  last calls: {recent or 'none'}\n"
            f"  pending updates: {self.pending_updates()}\n"
            f"  bot messages: {chats or 'none'}"
        )


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Parameters from the query string and a JSON, urlencoded or multipart body."""
    params: dict[str, Any] = dict(request.query)
    if not request.body_exists:
        return params
    if request.content_type == "application/json":
        try:
            body = await request.json()
        except ValueError as exc:
            raise ApiError("Bad Request: can't parse JSON object") from exc
        if not isinstance(body, dict):
            raise ApiError("Bad Request: JSON object expected")
        params.update(body)
        return params
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            params[key] = UploadedFile(value.filename, value.content_type, value.file.read())
        else:
            params[key] = value
    return params
