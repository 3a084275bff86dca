"""An album is one turn even when no single process saw all of it arrive: after a kill (the
update log replays the whole album), and when a load balancer spread its items over two
webhook replicas (the replica that answers takes the others' items from the shared log)."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import upgrade_to_head
from bot.db.models import UpdateLog
from bot.values import Role
from emulators import media_samples as samples
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from tests.conftest import TEST_DATABASE_URL
from tests.e2e.chat import stored_messages, texts
from tests.e2e.test_restart import bot_environment, bot_process
from tests.e2e.test_scale_out import _replica, _wait_healthy
from tests.e2e.web import free_port

CHAT = 505
MODEL = "gpt-4o"  # sees images, and three fit the default 16k context
IMAGES = [samples.image_bytes(320 + 10 * n, 240) for n in range(3)]


def image_count(body: dict[str, Any]) -> int:
    content = body["messages"][-1]["content"]
    return sum(item["type"] == "image_url" for item in content) if isinstance(content, list) else 0


async def pending_updates(database_url: str) -> list[int]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.scalars(select(UpdateLog.update_id).where(~UpdateLog.done))
            return list(rows)
    finally:
        await engine.dispose()


async def assert_answered_once_whole(
    telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    [request] = model.chat_requests()  # one turn, not one per photo
    assert image_count(request) == 3
    assert request["messages"][-1]["content"][-1] == {"type": "text", "text": "Which is best?"}
    assert texts(telegram, CHAT) == ["Echo: Which is best?"]
    stored = await stored_messages(database_url, CHAT)
    assert [m.role for m in stored] == [Role.USER, Role.ASSISTANT]
    assert await pending_updates(database_url) == []


async def test_an_album_taken_before_a_kill_is_answered_whole_after_the_restart(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    """The bot has taken the three updates (Telegram counts them delivered) and is fetching
    the first photo when it is killed: the restart must answer the album, not its first item."""
    env = {**bot_environment(database_url, telegram, model), "MODEL": MODEL}
    log = tmp_path / "bot.log"
    telegram.files.held = asyncio.Event()
    async with bot_process(env, log) as first:
        telegram.send_album(CHAT, IMAGES, caption="Which is best?")
        await telegram.wait_for(
            lambda: bool(telegram.files.downloads) and telegram.pending_updates() == 0, 60
        )
        first.send_signal(signal.SIGKILL)
        assert await first.wait() == -signal.SIGKILL
    assert model.chat_requests() == []
    telegram.files.held.set()
    async with bot_process(env, log) as second:
        await telegram.wait_for(lambda: bool(texts(telegram, CHAT)), 60)
        await asyncio.sleep(1.5)  # a second turn for a later item, if any, would come now
        second.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(second.wait(), 30) == 0, log.read_text()
    await assert_answered_once_whole(telegram, model, database_url)


@pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"),
    reason="replicas need PostgreSQL (advisory locks); set DATABASE_URL=postgresql+asyncpg://...",
)
async def test_an_album_spread_over_two_replicas_is_one_turn(
    tmp_path: Path, model: OpenAIEmulator, database_url: str
) -> None:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)
    await engine.dispose()
    async with BotAPIEmulator(rate_limits=False) as telegram:
        ports = [free_port(), free_port()]
        telegram.webhooks.targets = [f"http://127.0.0.1:{p}/telegram" for p in ports]
        replicas = [
            await _replica(tmp_path, telegram, model, database_url, p, MODEL=MODEL) for p in ports
        ]
        try:
            for port in ports:
                await _wait_healthy(port)
            await telegram.wait_for(lambda: len(telegram.calls_for("setWebhook")) == 2, 30)
            telegram.send_album(CHAT, IMAGES, caption="Which is best?")
            await telegram.wait_for(lambda: bool(texts(telegram, CHAT)), 60)
            await asyncio.sleep(2)  # a second turn, if any, would come now
        finally:
            for process in replicas:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            codes = [await process.wait() for process in replicas]
        assert codes == [0, 0]
        delivered_to = {d.url for d in telegram.webhooks.deliveries if d.status == 200}
        assert len(delivered_to) == 2, "the album's items went to both replicas"
        await assert_answered_once_whole(telegram, model, database_url)
