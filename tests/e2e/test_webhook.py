"""Webhook mode over real HTTP: the Bot API emulator POSTs updates to the bot's own server."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from bot.db.engine import create_engine
from bot.db.models import Message, UpdateLog
from bot.telegram.app import BotRuntime
from emulators.bot_api import BotAPIEmulator
from emulators.bot_api_webhook import SECRET_HEADER
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages, texts
from tests.e2e.web import SECRET, webhook_settings

CHAT = 4242


async def _count(database_url: str, model: type[Message] | type[UpdateLog]) -> int:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as conn:
            return int((await conn.execute(select(func.count()).select_from(model))).scalar_one())
    finally:
        await engine.dispose()


async def test_webhook_mode_registers_the_webhook_and_answers(
    telegram: BotAPIEmulator, make_settings: SettingsFactory
) -> None:
    settings = webhook_settings(make_settings)
    async with BotRuntime(settings):
        [call] = telegram.calls_for("setWebhook")
        assert call.params["url"] == settings.webhook_url
        assert call.params["secret_token"] == SECRET
        assert "message" in call.params["allowed_updates"]
        assert not call.params.get("drop_pending_updates")
        await ask(telegram, CHAT, "hello over a webhook")
    assert not telegram.calls_for("getUpdates")
    assert {d.url for d in telegram.webhooks.deliveries} == {settings.webhook_url}
    assert all(d.status == 200 for d in telegram.webhooks.deliveries)


async def test_wrong_or_missing_secret_is_refused_and_nothing_is_processed(
    telegram: BotAPIEmulator, make_settings: SettingsFactory, database_url: str
) -> None:
    settings = webhook_settings(make_settings)
    user = {"id": CHAT, "is_bot": False, "first_name": "Eve"}
    telegram.state.ensure_chat(CHAT, "private", None, user)
    update = {
        "update_id": 77,
        "message": telegram.state.build_message(CHAT, user, None, {"text": "let me in"}),
    }
    async with BotRuntime(settings), httpx.AsyncClient() as http:
        missing = await http.post(settings.webhook_url, json=update)
        wrong = await http.post(settings.webhook_url, json=update, headers={SECRET_HEADER: "x"})
        assert (missing.status_code, wrong.status_code) == (403, 403)
        assert await _count(database_url, UpdateLog) == 0
        assert not telegram.calls_for("sendMessage")
        # The same update with the right secret is taken: the refusals were about the secret.
        right = await http.post(settings.webhook_url, json=update, headers={SECRET_HEADER: SECRET})
        assert right.status_code == 200
        await telegram.wait_for(lambda: shows(telegram, CHAT, "Echo: let me in"))
    assert await _count(database_url, UpdateLog) == 1


async def test_malformed_webhook_body_is_a_400(make_settings: SettingsFactory) -> None:
    settings = webhook_settings(make_settings)
    async with BotRuntime(settings), httpx.AsyncClient() as http:
        response = await http.post(
            settings.webhook_url, content=b"{not json", headers={SECRET_HEADER: SECRET}
        )
    assert response.status_code == 400


async def test_a_redelivered_webhook_update_is_answered_once(
    telegram: BotAPIEmulator, make_settings: SettingsFactory, database_url: str
) -> None:
    async with BotRuntime(webhook_settings(make_settings)):
        await ask(telegram, CHAT, "first")
        telegram.redeliver(1)
        await telegram.wait_for(
            lambda: (
                sum(d.update_id == 1 and d.status == 200 for d in telegram.webhooks.deliveries) == 2
            )
        )
        await ask(telegram, CHAT, "second")
    assert texts(telegram, CHAT) == ["Echo: first", "Echo: second"]
    rows = await stored_messages(database_url, CHAT)
    assert [r.content for r in rows] == ["first", "Echo: first", "second", "Echo: second"]


async def test_drop_pending_updates_skips_what_was_queued_while_down(
    telegram: BotAPIEmulator, make_settings: SettingsFactory
) -> None:
    telegram.send_text(CHAT, "sent while the bot was down")
    async with BotRuntime(webhook_settings(make_settings, drop_pending_updates=True)):
        [call] = telegram.calls_for("setWebhook")
        assert call.params["drop_pending_updates"]
        await ask(telegram, CHAT, "after the start")
    assert texts(telegram, CHAT) == ["Echo: after the start"]
