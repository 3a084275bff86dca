"""Figure 3: many chats streaming at once into one bot process; throughput and memory."""

from __future__ import annotations

import time
from typing import Any

from bench.harness import CpuMeter, Latency
from bench.overhead import FIRST_CHAT, first_chats, rig, run_turns
from emulators.bot_api import BotAPIEmulator

REPLY_METHODS = ("sendMessage", "editMessageText", "sendChatAction", "sendMessageDraft")


async def throughput(database: str, latency: Latency, chats: int) -> dict[str, Any]:
    """All ``chats`` users write at once (flood limits on); the bot runs in its own process."""
    async with rig(database, latency, flood=True) as r:
        await run_turns(r, first_chats(1), 0, limit=30)  # warm-up in the first chat
        calls_before = len(r.telegram.calls)
        cpu = CpuMeter(r.process.pid)
        started = time.monotonic()
        cpu.start()
        times = await run_turns(r, first_chats(chats), 1, limit=120 + chats / 2)
        cpu.stop()
        elapsed = time.monotonic() - started
        calls = r.telegram.calls[calls_before:]
        expected = r.model.text
        visible = _visible(r.telegram, chats, expected)
    replies = [c for c in calls if c.method in REPLY_METHODS]
    done = sum(t.to_final is not None for t in times)
    return {
        "chats": chats,
        "seconds": round(elapsed, 2),
        "turns_per_s": round(done / elapsed, 2) if elapsed else None,
        "replies_complete": done,
        "peak_rss_mb": r.peak_rss_mb,
        "bot_cpu_ms_per_turn": cpu.ms_per_turn(chats),
        "telegram_calls_per_reply": round(len(replies) / chats, 2),
        "telegram_calls_per_reply_by_method": {
            m: round(sum(c.method == m for c in replies) / chats, 2) for m in REPLY_METHODS
        },
        "http_429_received_by_bot": sum(c.status == 429 for c in calls),
        **visible,
    }


def _visible(telegram: BotAPIEmulator, chats: int, expected: str) -> dict[str, int]:
    """What users saw: bot messages other than the model's reply (errors), missing replies."""
    other = 0
    missing = 0
    for chat_id in range(FIRST_CHAT, FIRST_CHAT + chats):
        texts = [m.text for m in telegram.bot_messages(chat_id)]
        other += sum(t != expected for t in texts)
        missing += expected not in texts
    return {"user_visible_error_messages": other, "replies_missing": missing}
