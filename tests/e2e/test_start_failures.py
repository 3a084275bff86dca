"""A start that fails half-way closes what it had opened, and only that: the next start of the
same bot finds the port, the poller lease and the database free."""

from __future__ import annotations

import socket

import httpx
import pytest
from telegram.error import BadRequest

from bot.telegram.app import BotRuntime
from emulators.bot_api import BotAPIEmulator
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask
from tests.e2e.test_single_poller import lease_holder
from tests.e2e.web import webhook_settings

CHAT = 7171


async def test_a_refused_set_webhook_stops_the_webhook_server_it_had_started(
    make_settings: SettingsFactory, telegram: BotAPIEmulator
) -> None:
    settings = webhook_settings(make_settings)
    telegram.fail_next("setWebhook", status=400, description="Bad Request: bad webhook")
    runtime = BotRuntime(settings)
    with pytest.raises(BadRequest, match=r"(?i)bad webhook"):
        async with runtime:
            pytest.fail("the start must fail")
    assert (runtime.app, runtime.web, runtime.runner) == (None, None, None)
    async with httpx.AsyncClient() as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{settings.webhook_port}/healthz")
    assert not telegram.calls_for("getUpdates")
    async with BotRuntime(settings):  # the same port, the same database
        await ask(telegram, CHAT, "hello after a failed start")


async def test_a_busy_health_port_releases_the_lease_and_never_polls(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, database_url: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        runtime = BotRuntime(make_settings(health_port=port, webhook_listen="127.0.0.1"))
        with pytest.raises(OSError):
            await runtime.start()
    assert (runtime.app, runtime.web, runtime.runner) == (None, None, None)
    assert await lease_holder(database_url) is None, "the lease it had taken is released"
    assert telegram.calls_for("getMe"), "the application had been initialized"
    assert not telegram.calls_for("deleteWebhook") and not telegram.calls_for("getUpdates")
    async with BotRuntime(make_settings()):
        await ask(telegram, CHAT, "hello after a failed start")
