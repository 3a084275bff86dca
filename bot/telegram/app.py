"""Wiring: the database, the model client and the python-telegram-bot Application, started
and stopped together. `BotRuntime` is what `python -m bot run` and the end-to-end tests run."""

from __future__ import annotations

import logging
from types import TracebackType

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from telegram import Update
from telegram.ext import ApplicationBuilder

from bot.access import Access
from bot.config import Settings
from bot.db import store
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import upgrade_to_head
from bot.llm.backends import Backends
from bot.logs import quiet_secret_loggers
from bot.telegram.admin import AdminHandlers
from bot.telegram.commands import publish_commands
from bot.telegram.handlers import AnyApplication, ChatHandlers
from bot.telegram.ordering import ChatOrderedUpdateProcessor
from bot.telegram.ratelimit import ChatRateLimiter
from bot.telegram.userdata import UserDataHandlers
from bot.turn import TurnRunner

logger = logging.getLogger(__name__)

# Calls wait (FIFO, up to pool_timeout) for a free connection. Kept small on purpose: httpcore
# checks every pooled connection (and counts the idle ones, per idle one) on each request and
# response, so a pool that grew to 200+ keep-alive connections made every Telegram call cost
# O(n^2) CPU; bench/ at 200 chats showed it as the top cost. 32 connections carry far more
# than Telegram's ~30 messages/s at realistic round trips.
TELEGRAM_POOL_SIZE = 32
POLL_TIMEOUT = 30


def build_application(
    settings: Settings, runner: TurnRunner, sessions: async_sessionmaker[AsyncSession]
) -> AnyApplication:
    root = settings.telegram_base_url
    access = Access(settings, sessions)
    handlers = ChatHandlers(settings, runner, access)
    ordering = ChatOrderedUpdateProcessor(
        max_queued_per_chat=settings.max_queued_per_chat,
        skips_queue=handlers.skips_queue,
        on_busy=handlers.busy,
    )
    app = (
        ApplicationBuilder()
        .token(settings.telegram_bot_token.get_secret_value())
        .base_url(f"{root}/bot")
        .base_file_url(f"{root}/file/bot")
        .concurrent_updates(ordering)
        .rate_limiter(ChatRateLimiter())
        .connection_pool_size(TELEGRAM_POOL_SIZE)
        .pool_timeout(30)
        .build()
    )
    handlers.register(app)
    AdminHandlers(settings, sessions, runner, access).register(app)
    UserDataHandlers(sessions).register(app)
    return app


def model_http_client(settings: Settings) -> httpx.AsyncClient:
    """The one shared client for the model server; the timeout is per read, not per reply."""
    timeout = httpx.Timeout(settings.openai_timeout, connect=settings.openai_connect_timeout)
    limits = httpx.Limits(max_connections=512, max_keepalive_connections=64)
    return httpx.AsyncClient(timeout=timeout, limits=limits)


class BotRuntime:
    """Everything the bot runs on; `async with BotRuntime(settings):` serves until exit."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._engine: AsyncEngine | None = None
        self._http: httpx.AsyncClient | None = None
        self.app: AnyApplication | None = None

    async def start(self) -> None:
        settings = self.settings
        quiet_secret_loggers()  # also when embedded without the CLI's logging set-up
        self._engine = create_engine(settings.resolved_database_url)
        await upgrade_to_head(self._engine)
        self._http = model_http_client(settings)
        client = Backends.from_settings(self._http, settings)
        sessions = create_sessionmaker(self._engine)
        async with sessions.begin() as session:
            if settled := await store.close_unfinished_replies(session):
                logger.warning("closed %d replies left unfinished by the previous run", settled)
        runner = TurnRunner(settings, sessions, client)
        self.app = build_application(settings, runner, sessions)
        await self.app.initialize()
        await publish_commands(self.app.bot, settings.admin_user_ids)
        await self.app.start()
        assert self.app.updater is not None
        await self.app.updater.start_polling(
            timeout=POLL_TIMEOUT, allowed_updates=Update.ALL_TYPES, drop_pending_updates=False
        )
        logger.info("bot @%s is polling for updates", self.app.bot.username)

    async def stop(self) -> None:
        """Stop taking updates, let running turns finish, then close every connection."""
        if self.app is not None:
            if self.app.updater is not None and self.app.updater.running:
                await self.app.updater.stop()
            if self.app.running:
                await self.app.stop()
            await self.app.shutdown()
            self.app = None
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._engine is not None:
            await self._engine.dispose()
            self._engine = None

    async def __aenter__(self) -> BotRuntime:
        try:
            await self.start()
        except BaseException:
            await self.stop()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
