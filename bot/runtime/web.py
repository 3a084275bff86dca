"""The bot's HTTP side: the Telegram webhook, `/healthz`, `/readyz` and `/metrics` on one port.

A small Starlette app served by uvicorn inside the bot's own event loop. A webhook request is
accepted only with the right `X-Telegram-Bot-Api-Secret-Token` and a body that is an update
(`webhook_body`: 413 past 1 MiB, 400 for anything else); the update is recorded in the
database (a redelivery stops there) before the 200, then queued for the Application.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import socket
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import uvicorn
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telegram.ext import Application

from bot.runtime.metrics import DUPLICATE_UPDATES, WEBHOOK_REJECTED
from bot.runtime.update_gate import UpdateGate
from bot.runtime.webhook_body import RejectedBody, read_update

logger = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
CHECK_TIMEOUT = 5.0
Check = Callable[[], Awaitable[str | None]]


class Readiness:
    """Whether the bot can do its work: the database answers and the model server is there."""

    def __init__(
        self,
        engine: AsyncEngine,
        http: httpx.AsyncClient,
        models_url: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self._engine = engine
        self._http = http
        self._models_url = models_url
        self._headers = headers or {}

    async def database(self) -> str | None:
        """None when `SELECT 1` works, else what went wrong (no URL, no password)."""
        try:
            async with asyncio.timeout(CHECK_TIMEOUT), self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except (SQLAlchemyError, OSError, TimeoutError) as exc:
            return f"unreachable ({type(exc).__name__})"
        return None

    async def model(self) -> str | None:
        """None when GET …/models answers 2xx, else the status or the transport error."""
        try:
            response = await self._http.get(
                self._models_url, headers=self._headers, timeout=CHECK_TIMEOUT
            )
        except httpx.HTTPError as exc:
            return f"unreachable ({type(exc).__name__})"
        return None if response.is_success else f"HTTP {response.status_code}"

    async def report(self) -> dict[str, str]:
        """Each check's result: "ok" or the problem."""
        names = ("database", "model")
        results = await asyncio.gather(self.database(), self.model())
        return {name: problem or "ok" for name, problem in zip(names, results, strict=True)}


class WebhookReceiver:
    """Takes updates Telegram posts, checking the secret token on every request."""

    def __init__(
        self, app: Application[Any, Any, Any, Any, Any, Any], gate: UpdateGate, secret: str
    ) -> None:
        self._app = app
        self._gate = gate
        self._secret = secret.encode()
        self.closing = False

    async def handle(self, request: Request) -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not hmac.compare_digest(given, self._secret):
            WEBHOOK_REJECTED.labels("secret").inc()
            logger.warning("webhook request without the right secret token: refused")
            return Response(status_code=403)
        if self.closing:  # Telegram retries; another replica (or this one, restarted) takes it
            return Response(status_code=503)
        try:
            update = await read_update(request, self._app.bot)
        except RejectedBody as exc:
            WEBHOOK_REJECTED.labels(exc.reason).inc()
            logger.warning("webhook body refused (%s): HTTP %d", exc.reason, exc.status)
            return Response(status_code=exc.status)
        try:
            new = await self._gate.record(update)
        except SQLAlchemyError:
            logger.exception("could not record update %s; Telegram will retry", update.update_id)
            return Response(status_code=503)
        if new:
            await self._app.update_queue.put(update)
        else:
            DUPLICATE_UPDATES.inc()
            logger.info("update %s was taken before: ignored", update.update_id)
        return Response(status_code=200)


def web_app(readiness: Readiness, webhook: WebhookReceiver | None, path: str) -> Starlette:
    """The routes; the webhook route only in webhook mode."""

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks = await readiness.report()
        failed = sorted(name for name, result in checks.items() if result != "ok")
        body: dict[str, Any] = {"status": "unavailable" if failed else "ready", "checks": checks}
        if failed:
            body["failed"] = failed
        return JSONResponse(body, status_code=503 if failed else 200)

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    if webhook is not None:
        routes.append(Route(path, webhook.handle, methods=["POST"]))
    return Starlette(routes=routes)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Leave SIGTERM/SIGINT to the bot, which stops this server as part of shutting down."""
        yield


class HttpServer:
    """uvicorn serving an ASGI app as a task of the running loop."""

    def __init__(self, app: Starlette, host: str, port: int) -> None:
        config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="off")
        self._server = _Server(config)
        self._host, self._port = host, port
        self._task: asyncio.Task[None] | None = None
        self.port = port

    async def start(self) -> None:
        """Bind (an OSError names a busy port here), then serve in the background."""
        family = socket.AF_INET6 if ":" in self._host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self._host, self._port))
        except OSError:
            sock.close()
            raise
        self.port = sock.getsockname()[1]
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        while not self._server.started and not self._task.done():  # noqa: ASYNC110 - uvicorn sets a flag
            await asyncio.sleep(0.01)
        if self._task.done():
            await self._task
        logger.info("HTTP server listening on %s:%d", self._host, self.port)

    async def stop(self) -> None:
        if self._task is not None:
            self._server.should_exit = True
            await self._task
            self._task = None
