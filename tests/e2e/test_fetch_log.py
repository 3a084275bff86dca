"""Polling: an update is in the update log before Telegram counts it delivered.

Telegram forgets an update once a getUpdates asks past it, and python-telegram-bot sends that
call as soon as it has queued the batch. Here the bot is SIGKILLed at exactly that moment —
the emulator kills it when the confirming getUpdates arrives, before answering — and started
again: every message must still be answered, once.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from pathlib import Path

from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from tests.e2e.chat import shows
from tests.e2e.test_restart import bot_environment, bot_process

CHATS = range(7001, 7011)


async def test_updates_telegram_counts_delivered_survive_a_kill_at_that_moment(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    env = bot_environment(database_url, telegram, model)
    log = tmp_path / "bot.log"
    forgotten: list[int] = []
    async with bot_process(env, log) as first:
        await telegram.wait_for(lambda: telegram.calls_for("getUpdates"), timeout=60)

        async def kill_now(update_ids: list[int]) -> None:
            if first.returncode is None and not forgotten:
                os.kill(first.pid, signal.SIGKILL)
            forgotten.extend(update_ids)

        telegram.state.on_confirm.append(kill_now)
        for chat in CHATS:  # one burst: fetched in one batch, confirmed by the next poll
            telegram.send_text(chat, f"hello from {chat}")
        await first.wait()
        telegram.state.on_confirm.clear()
    assert forgotten, "the kill came when Telegram forgot the burst"
    async with bot_process(env, log) as second:
        for chat in CHATS:
            expected = f"Echo: hello from {chat}"
            await telegram.wait_for(lambda c=chat, e=expected: shows(telegram, c, e), timeout=60)
        second.send_signal(signal.SIGTERM)
        await second.wait()
    asked = Counter(r["messages"][-1]["content"] for r in model.chat_requests())
    assert all(count == 1 for count in asked.values()), asked
