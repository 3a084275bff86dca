"""/healthz, /readyz and /metrics over real HTTP, in webhook mode and on polling's HEALTH_PORT."""

from __future__ import annotations

import asyncio

import httpx

from bot.db.engine import create_engine
from bot.runtime.web import HttpServer, Readiness, web_app
from bot.telegram.app import BotRuntime
from bot.telegram.streamer import TYPING_DELAY
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask
from tests.e2e.web import free_port, metric, webhook_settings

CHAT = 5151
AUTH = {"Authorization": "Bearer sk-test-key"}  # the emulator checks the key on /models


async def test_health_and_readiness_in_webhook_mode(make_settings: SettingsFactory) -> None:
    settings = webhook_settings(make_settings)
    root = f"http://127.0.0.1:{settings.webhook_port}"
    async with BotRuntime(settings), httpx.AsyncClient() as http:
        health = await http.get(f"{root}/healthz")
        ready = await http.get(f"{root}/readyz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok", "model": "ok"}}


async def _readyz(readiness: Readiness) -> httpx.Response:
    server = HttpServer(web_app(readiness, None, "/"), "127.0.0.1", 0)
    await server.start()
    try:
        async with httpx.AsyncClient() as http:
            return await http.get(f"http://127.0.0.1:{server.port}/readyz")
    finally:
        await server.stop()


async def test_readiness_is_503_naming_the_database_when_it_is_down(model: OpenAIEmulator) -> None:
    down = create_engine(f"postgresql+asyncpg://bot:pw@127.0.0.1:{free_port()}/bot")
    async with httpx.AsyncClient() as http:
        response = await _readyz(Readiness(down, http, f"{model.base_url}/models", AUTH))
    await down.dispose()
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["database"] and body["checks"]["model"] == "ok"
    assert body["checks"]["database"].startswith("unreachable")
    assert "pw" not in response.text


async def test_readiness_is_503_naming_the_model_when_it_is_down(database_url: str) -> None:
    engine = create_engine(database_url)
    async with httpx.AsyncClient() as http:
        gone = f"http://127.0.0.1:{free_port()}/v1"
        response = await _readyz(Readiness(engine, http, f"{gone}/models", AUTH))
    await engine.dispose()
    assert response.status_code == 503
    assert response.json()["failed"] == ["model"]


async def test_metrics_count_turns_tokens_latency_and_telegram_errors(
    telegram: BotAPIEmulator, model: OpenAIEmulator, make_settings: SettingsFactory
) -> None:
    settings = webhook_settings(make_settings)
    url = f"http://127.0.0.1:{settings.webhook_port}/metrics"
    async with BotRuntime(settings), httpx.AsyncClient() as http:
        before = (await http.get(url)).text
        telegram.fail_next("sendChatAction", status=403, description="Forbidden: bot was blocked")
        slow = Reply(text="Echo: count me", first_token_delay=TYPING_DELAY + 0.3)
        model.enqueue(slow)  # slow enough for "typing…", which Telegram refuses
        await ask(telegram, CHAT, "count me")
        turns = 'outcome="answered"'
        goal = metric(before, "memorybot_turns_total", turns) + 1
        after = (await http.get(url)).text
        async with asyncio.timeout(10):
            while metric(after, "memorybot_turns_total", turns) < goal:  # counted once stored
                await asyncio.sleep(0.05)
                after = (await http.get(url)).text
    assert (
        metric(after, "memorybot_turns_total", turns)
        == metric(before, "memorybot_turns_total", turns) + 1
    )
    for name in (
        "memorybot_model_latency_seconds_count",
        "memorybot_time_to_first_token_seconds_count",
    ):
        assert metric(after, name) == metric(before, name) + 1
    completion = 'kind="completion"'
    assert metric(after, "memorybot_tokens_total", completion) > metric(
        before, "memorybot_tokens_total", completion
    )
    forbidden = 'kind="forbidden"'
    assert (
        metric(after, "memorybot_telegram_api_errors_total", forbidden)
        == metric(before, "memorybot_telegram_api_errors_total", forbidden) + 1
    )
    assert "memorybot_queued_updates " in after


async def test_polling_mode_serves_health_on_health_port_without_a_webhook(
    telegram: BotAPIEmulator, make_settings: SettingsFactory
) -> None:
    port = free_port()
    async with BotRuntime(make_settings(health_port=port, webhook_listen="127.0.0.1")):
        async with httpx.AsyncClient() as http:
            health = await http.get(f"http://127.0.0.1:{port}/healthz")
            hook = await http.post(f"http://127.0.0.1:{port}/telegram", json={})
        await ask(telegram, CHAT, "still polling")
    assert health.status_code == 200
    assert hook.status_code == 404
    assert telegram.calls_for("getUpdates") and not telegram.calls_for("setWebhook")
