"""Two webhook replicas sharing one PostgreSQL database keep every chat in order and never
answer an update twice, while the Bot API emulator load-balances deliveries between them and
redelivers some updates to the other replica. PostgreSQL only: SQLite serves one process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections import Counter
from pathlib import Path

import httpx
import pytest

from bot.db.engine import create_engine
from bot.db.migrate import upgrade_to_head
from bot.telegram.handlers import HELP
from bot.values import Role
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from tests.conftest import TEST_DATABASE_URL
from tests.e2e.chat import stored_messages, texts
from tests.e2e.web import SECRET, free_port

pytestmark = pytest.mark.skipif(
    not TEST_DATABASE_URL.startswith("postgresql"),
    reason="scale-out needs PostgreSQL (advisory locks); set DATABASE_URL=postgresql+asyncpg://...",
)

ROOT = Path(__file__).resolve().parents[2]
CHATS = [7000 + n for n in range(20)]
ROUNDS = 5
REDELIVERED = 12


async def _replica(
    tmp_path: Path,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    url: str,
    port: int,
    **settings: str,
) -> asyncio.subprocess.Process:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_BASE_URL": telegram.base_url.removesuffix("/bot"),
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_API_KEY": "sk-test-key",
        "DATABASE_URL": url,
        "MODE": "webhook",
        "ADVISORY_LOCKS": "true",
        "DATABASE_POOL_SIZE": "5",  # 2 replicas × (10 + 10 lock) connections: leave room for CI
        "WEBHOOK_URL": f"http://127.0.0.1:{port}/telegram",
        "WEBHOOK_LISTEN": "127.0.0.1",
        "WEBHOOK_PORT": str(port),
        "WEBHOOK_SECRET": SECRET,
        "EDIT_INTERVAL": "0.2",
        "LOG_LEVEL": "WARNING",
        **settings,
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )


async def _wait_healthy(port: int) -> None:
    async with httpx.AsyncClient() as http, asyncio.timeout(60):
        while True:
            try:
                if (await http.get(f"http://127.0.0.1:{port}/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)


def _delivered(telegram: BotAPIEmulator, update_id: int) -> int:
    return sum(d.update_id == update_id and d.status == 200 for d in telegram.webhooks.deliveries)


async def test_two_replicas_keep_chats_in_order_and_answer_each_update_once(
    tmp_path: Path, model: OpenAIEmulator, database_url: str
) -> None:
    engine = create_engine(database_url)
    await upgrade_to_head(engine)  # once, as compose's `migrate` service does
    await engine.dispose()
    async with BotAPIEmulator(rate_limits=False) as telegram:
        ports = [free_port(), free_port()]
        telegram.webhooks.targets = [f"http://127.0.0.1:{p}/telegram" for p in ports]
        replicas = [await _replica(tmp_path, telegram, model, database_url, p) for p in ports]
        try:
            for port in ports:
                await _wait_healthy(port)
            await telegram.wait_for(lambda: len(telegram.calls_for("setWebhook")) == 2, 30)
            first = CHATS[0]
            help_update = telegram.state.next_update_id
            again = [help_update, *range(help_update + 1, help_update + REDELIVERED)]
            telegram.send_text(first, "/help")
            for n in range(ROUNDS):
                for chat in CHATS:
                    telegram.send_text(chat, f"chat {chat} message {n}")
                if n == 1:  # redeliver answered updates while later ones are in flight
                    await telegram.wait_for(lambda: all(_delivered(telegram, u) for u in again), 60)
                    for update_id in again:
                        telegram.redeliver(update_id)
            await telegram.wait_for(
                lambda: (
                    all(_delivered(telegram, u) == 2 for u in again)
                    and all(len(texts(telegram, c)) >= ROUNDS for c in CHATS)
                    and telegram.pending_updates() == 0
                ),
                timeout=180,
            )
            await asyncio.sleep(1)  # a duplicate answer, if any, would show up now
        finally:
            for process in replicas:
                if process.returncode is None:
                    process.send_signal(signal.SIGTERM)
            codes = [await process.wait() for process in replicas]
        assert codes == [0, 0]

        duplicates = 0
        for chat in CHATS:
            asked = [f"chat {chat} message {n}" for n in range(ROUNDS)]
            shown = [t for t in texts(telegram, chat) if t != HELP]
            assert shown == [f"Echo: {q}" for q in asked], f"chat {chat} out of order"
            rows = await stored_messages(database_url, chat)
            contents = [(r.role, r.content) for r in rows]
            expected = [
                (role, c)
                for q in asked
                for role, c in ((Role.USER, q), (Role.ASSISTANT, f"Echo: {q}"))
            ]
            duplicates += sum(n - 1 for n in Counter(contents).values())
            assert contents == expected, f"chat {chat}: stored history differs"
        assert texts(telegram, first).count(HELP) == 1
        by_replica = Counter(d.url for d in telegram.webhooks.deliveries if d.status == 200)
        updates = 1 + len(CHATS) * ROUNDS
        print(
            f"\nscale-out: {len(CHATS)} chats, {updates} updates, {len(again)} redelivered, "
            f"deliveries per replica {sorted(by_replica.values())}, duplicates found {duplicates}"
        )
        assert duplicates == 0
        assert all(by_replica[url] > 0 for url in telegram.webhooks.targets)
