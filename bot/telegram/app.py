"""Wiring: the database, the model client and the python-telegram-bot Application, started
and stopped together. `BotRuntime` is what `python -m bot run` and the end-to-end tests run."""

from __future__ import annotations

import asyncio
import logging
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Update
from telegram.error import Conflict, TelegramError
from telegram.ext import ApplicationBuilder, ExtBot, Updater
from telegram.request import HTTPXRequest

from bot.access import Access
from bot.config import Settings
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import upgrade_to_head
from bot.llm.backends import Backends
from bot.llm.tokens import TokenCounter
from bot.logs import quiet_secret_loggers
from bot.media import MediaProcessor, media_processor
from bot.model_profile import DEFAULT_PROFILE
from bot.runtime.http_transport import AiohttpTransport, model_http_client
from bot.runtime.metrics import QUEUE_DEPTH, MeteredClient, MeteredRateLimiter
from bot.runtime.ratelimit import ChatRateLimiter
from bot.runtime.update_gate import UpdateGate
from bot.runtime.web import HttpServer, Readiness, WebhookReceiver, web_app
from bot.telegram import routes
from bot.telegram.admin import AdminHandlers
from bot.telegram.commands import publish_commands
from bot.telegram.handlers import AnyApplication, ChatHandlers
from bot.telegram.ordering import ChatOrderedUpdateProcessor
from bot.telegram.poll_conflicts import PollConflicts, PollingRequest
from bot.telegram.poller_guard import AnotherPoller, PollerGuard
from bot.telegram.polling_bot import PollingBot
from bot.telegram.settle import settle_unfinished
from bot.telegram.supergroup import SupergroupHandlers
from bot.telegram.tools_admin import ToolsAdmin
from bot.telegram.userdata_commands import UserDataHandlers
from bot.tools.toolbox import Toolbox
from bot.turn import TurnRunner

logger = logging.getLogger(__name__)

# Calls wait (FIFO, up to pool_timeout) for a free connection. 32 connections carry far more
# than Telegram's ~30 messages/s at realistic round trips.
TELEGRAM_POOL_SIZE = 32
POLL_TIMEOUT = 30


def build_application(
    settings: Settings,
    runner: TurnRunner,
    sessions: async_sessionmaker[AsyncSession],
    gate: UpdateGate | None = None,
    poll_request: HTTPXRequest | None = None,
    media: MediaProcessor | None = None,
) -> AnyApplication:
    root = settings.telegram_base_url
    access = Access(settings, sessions)
    handlers = ChatHandlers(settings, runner, access, media, gate)
    ordering = ChatOrderedUpdateProcessor(
        max_queued_per_chat=settings.max_queued_per_chat,
        skips_queue=handlers.skips_queue,
        keeps_pending=handlers.keeps_pending,
        on_busy=handlers.busy,
        gate=gate,
        records=settings.mode != "webhook",  # the webhook records before it answers Telegram
    )
    QUEUE_DEPTH.set_function(ordering.queued)
    bot_settings: dict[str, Any] = {
        "token": settings.telegram_bot_token.get_secret_value(),
        "base_url": f"{root}/bot",
        "base_file_url": f"{root}/file/bot",
        "rate_limiter": MeteredRateLimiter(ChatRateLimiter()),
        "request": telegram_request(TELEGRAM_POOL_SIZE),
        "get_updates_request": poll_request or polling_request(),
    }
    # Polling logs each fetched batch before Telegram may count it delivered (polling_bot.py);
    # the webhook logs each update before it answers Telegram.
    bot: ExtBot[Any] = (
        PollingBot(gate=gate, **bot_settings)
        if gate is not None and settings.mode != "webhook"
        else ExtBot(**bot_settings)
    )
    app = ApplicationBuilder().bot(bot).concurrent_updates(ordering).build()
    ordering.process_earlier = app.process_update
    routes.register(
        app,
        handlers,
        AdminHandlers(settings, sessions, runner, access),
        UserDataHandlers(sessions),
        SupergroupHandlers(sessions),
        ToolsAdmin(settings, sessions, access, runner.toolbox),
    )
    return app


def telegram_request(pool_size: int) -> HTTPXRequest:
    """Bot API calls over aiohttp (`bot.http_transport`), waiting up to 30 s for a connection."""
    transport = AiohttpTransport(max_connections=pool_size)
    return HTTPXRequest(pool_size, pool_timeout=30, httpx_kwargs={"transport": transport})


def polling_request() -> PollingRequest:
    """The getUpdates connection (one), like `telegram_request`, closable on a conflict."""
    transport = AiohttpTransport(max_connections=1)
    return PollingRequest(1, pool_timeout=30, httpx_kwargs={"transport": transport})


class BotRuntime:
    """Everything the bot runs on; `async with BotRuntime(settings):` serves until exit.

    `start` pushes the closing of each resource on an exit stack as soon as it holds it, so a
    failure half-way closes what was opened, newest first, and `stop` closes the rest the same
    way: first what takes updates, then the grace period for running turns, then the rest."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._stack = AsyncExitStack()
        self.web: HttpServer | None = None
        self.app: AnyApplication | None = None
        self.runner: TurnRunner | None = None
        self.toolbox: Toolbox | None = None
        self._polling = polling_request()
        self._conflicts = PollConflicts()
        self._halting: asyncio.Task[None] | None = None
        #: Set when the bot must stop by itself (another poller); `halted_by` says why.
        self.must_stop = asyncio.Event()
        self.halted_by: AnotherPoller | None = None

    async def start(self) -> None:
        async with AsyncExitStack() as stack:
            stack.callback(self._forget)  # runs last
            await self._open(stack)
            self._stack = stack.pop_all()

    async def _open(self, stack: AsyncExitStack) -> None:
        settings = self.settings
        quiet_secret_loggers()  # also when embedded without the CLI's logging set-up
        engine = create_engine(settings.resolved_database_url, settings.database_pool_size)
        stack.push_async_callback(engine.dispose)
        await upgrade_to_head(engine)
        sessions = create_sessionmaker(engine)
        if settings.mode != "webhook":  # before anything is handled or settled
            lease = PollerGuard.of(settings, sessions, on_lost=self._halt)
            await lease.acquire()
            # Released only after the application stopped: then another instance may replay
            # what is pending.
            stack.push_async_callback(lease.release)
        http = model_http_client(settings)
        stack.push_async_callback(http.aclose)
        backends = Backends.from_settings(http, settings)
        client = MeteredClient(backends)
        # Tools: the built-ins, and the MCP servers, connected once (closed after the runner).
        toolbox = self.toolbox = Toolbox.for_backends(settings, backends, http)
        stack.push_async_callback(toolbox.aclose)
        await toolbox.start()
        runner = self.runner = TurnRunner(settings, sessions, client, toolbox)
        stack.push_async_callback(runner.aclose)
        TokenCounter(settings.model)  # read the vocabulary (~0.1 s) now, not in a user's turn
        gate = UpdateGate(
            engine,
            sessions,
            advisory_locks=settings.advisory_locks,
            pool_size=settings.database_pool_size,
        )
        stack.push_async_callback(gate.close)
        # Attachments: downloads and transcriptions share the model's HTTP client.
        media = media_processor(settings, http)
        stack.push_async_callback(media.aclose)  # its parsing workers, after the last turn
        app = self.app = build_application(settings, runner, sessions, gate, self._polling, media)
        stack.push_async_callback(app.shutdown)  # a no-op if `initialize` failed
        await app.initialize()
        await publish_commands(app.bot, settings.admin_user_ids)
        await app.start()
        stack.push_async_callback(self._stop_application, app)
        processor = app.update_processor
        assert isinstance(processor, ChatOrderedUpdateProcessor)
        await settle_unfinished(app.bot, sessions, runner, settings, processor)
        if chats := await processor.replay_pending(app.bot):
            logger.warning("handling updates a previous run left unfinished in %d chats", chats)
        default = backends.endpoint(DEFAULT_PROFILE)
        readiness = Readiness(engine, http, default.models_url(), default.request_headers())
        if settings.mode == "webhook":
            await self._start_webhook(stack, app, gate, readiness)
            return
        if settings.health_port:
            self.web = HttpServer(
                web_app(readiness, None, "/"), settings.webhook_listen, settings.health_port
            )
            await self._serve(stack, self.web)
        assert app.updater is not None
        if self.halted_by is not None:  # the lease was lost while starting
            raise self.halted_by
        self._conflicts.started()
        stack.push_async_callback(self._stop_polling, app.updater)  # also a half-started one
        await app.updater.start_polling(
            timeout=POLL_TIMEOUT,
            allowed_updates=Update.ALL_TYPES,
            drop_pending_updates=settings.drop_pending_updates,
            error_callback=self._poll_error,
        )
        logger.info("bot @%s is polling for updates", app.bot.username)

    async def _start_webhook(
        self, stack: AsyncExitStack, app: AnyApplication, gate: UpdateGate, readiness: Readiness
    ) -> None:
        """Serve the webhook first, then tell Telegram where it is."""
        settings = self.settings
        secret = settings.webhook_secret.get_secret_value()
        receiver = WebhookReceiver(app, gate, secret)
        routes = web_app(readiness, receiver, settings.webhook_path)
        self.web = HttpServer(routes, settings.webhook_listen, settings.webhook_port)
        await self._serve(stack, self.web)
        # First of all on stop: Telegram retries what it cannot deliver now.
        stack.callback(setattr, receiver, "closing", True)
        await app.bot.set_webhook(
            settings.webhook_url,
            secret_token=secret,
            allowed_updates=Update.ALL_TYPES,
            drop_pending_updates=settings.drop_pending_updates,
        )
        logger.info("bot @%s takes updates by webhook", app.bot.username)

    @staticmethod
    async def _serve(stack: AsyncExitStack, server: HttpServer) -> None:
        await server.start()
        stack.push_async_callback(server.stop)

    def _poll_error(self, error: TelegramError) -> None:
        """PTB's polling loop failed a getUpdates (it retries); a Conflict may stop the bot."""
        if isinstance(error, Conflict) and self._conflicts.must_stop(error):
            self._halt(AnotherPoller(f"Telegram refused getUpdates: {error.message}"))
        else:
            logger.warning("error while polling for updates (retrying): %s", error)

    def _halt(self, reason: AnotherPoller) -> None:
        """Another instance polls: stop polling now, without another getUpdates, and ask
        whoever serves the runtime to stop it (`must_stop`)."""
        if self.halted_by is not None:
            return
        logger.error("stopping: %s", reason)
        self.halted_by = reason
        self._polling.close()
        if self.app is not None and self.app.updater is not None and self.app.updater.running:
            self._halting = asyncio.create_task(self.app.updater.stop())
        self.must_stop.set()

    async def stop(self) -> None:
        """Stop taking updates, give running turns the grace period, then close everything."""
        await self._stack.aclose()

    async def _stop_polling(self, updater: Updater) -> None:
        if self._halting is not None:
            await self._halting
        if updater.running:
            await updater.stop()

    async def _stop_application(self, app: AnyApplication) -> None:
        """What takes updates is stopped by now: let running turns finish, then stop."""
        await self._finish_turns(app)
        if app.running:
            await app.stop()

    def _forget(self) -> None:
        self.web = self.app = self.runner = self.toolbox = None

    async def _finish_turns(self, app: AnyApplication) -> None:
        processor = app.update_processor
        if not isinstance(processor, ChatOrderedUpdateProcessor) or not processor.running:
            return
        grace = self.settings.shutdown_grace_seconds
        count = len(processor.running)
        logger.info("letting %d running updates finish (up to %.0fs)", count, grace)
        late = await processor.finish_running(grace)
        if late:
            logger.warning("%d updates did not finish in time: replies stored as interrupted", late)

    async def __aenter__(self) -> BotRuntime:
        await self.start()  # closes what it opened if it fails
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
