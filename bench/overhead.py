"""Figures 1 and 2: the bot's own time per turn, by concurrency and by history length."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import create_async_engine

from bench.harness import (
    CpuMeter,
    Latency,
    TimedModel,
    TurnTimes,
    bot_env,
    bot_process,
    fresh_database,
    peak_rss_mb,
    percentiles,
    send_all,
    shown,
    turn_times,
    wait_replies,
)
from bot.db.migrate import upgrade_to_head
from bot.db.models import Chat, Conversation, Message, Status, User
from bot.llm.tokens import TokenCounter
from bot.values import Role
from emulators.bot_api import BotAPIEmulator

FIRST_CHAT = 700_000_000
SEED_BATCH = 5_000
SEED_TEXT = "An earlier message of this long conversation, kept for the record. " * 12
HISTORY_LIMITS = {"context_tokens": 2_048, "max_reply_tokens": 256}


@dataclass
class Rig:
    telegram: BotAPIEmulator
    model: TimedModel
    database_url: str
    process: asyncio.subprocess.Process
    peak_rss_mb: float | None = None
    turns: dict[int, int] = field(default_factory=dict)  # turns sent per chat


@contextlib.asynccontextmanager
async def rig(
    database: str,
    latency: Latency,
    *,
    flood: bool,
    history: dict[int, int] | None = None,
    profile: Path | None = None,
    settings: dict[str, Any] | None = None,
) -> AsyncIterator[Rig]:
    """Emulators, a fresh database (``history``: chat id -> messages seeded) and the bot process.

    With history, the context is 2,048 tokens so that ten seeded messages already fill it:
    every size then sends the same prompt and only the stored history differs. `settings`
    overrides the bot's defaults.
    """
    async with (
        fresh_database(database) as url,
        BotAPIEmulator(latency=latency.telegram, rate_limits=flood) as telegram,
        TimedModel(latency) as model,
    ):
        extra = (HISTORY_LIMITS if history else {}) | (settings or {})
        env = bot_env(telegram, model, url, **extra)
        for chat_id, count in (history or {}).items():
            await seed_history(url, chat_id, count)
        async with bot_process(env, open_limits=not flood, profile=profile) as process:
            await telegram.wait_for(lambda: telegram.state.active_polls > 0, timeout=30)
            r = Rig(telegram, model, url, process)
            yield r
            r.peak_rss_mb = peak_rss_mb(process.pid)


def first_chats(count: int) -> list[int]:
    return [FIRST_CHAT + i for i in range(count)]


async def run_turns(r: Rig, chat_ids: list[int], turn: int, limit: float) -> list[TurnTimes]:
    """These private chats write at once; the overheads of every chat's turn."""
    for chat_id in chat_ids:
        r.turns[chat_id] = r.turns.get(chat_id, 0) + 1
    send_all(r.telegram, chat_ids, turn)
    await wait_replies(r.telegram, {c: r.turns[c] for c in chat_ids}, r.model.text, limit)
    # The emulator shows a new text on arrival but records the call after its latency.
    await asyncio.sleep(r.telegram.latency + 0.05)
    return [turn_times(r.telegram, r.model, c, turn) for c in chat_ids]


def summarize(times: list[TurnTimes], *, expected: int, cpu: CpuMeter) -> dict[str, Any]:
    return {
        "turns": expected,
        "update_to_request": percentiles(t.to_request for t in times),
        "last_token_to_final_edit": percentiles(t.to_final for t in times),
        "incomplete": sum(t.to_request is None or t.to_final is None for t in times),
        "bot_cpu_ms_per_turn": cpu.ms_per_turn(expected),
    }


async def concurrency(
    database: str,
    latency: Latency,
    chats: int,
    *,
    flood: bool = True,
    profile: Path | None = None,
) -> dict[str, Any]:
    """One turn in each of ``chats`` chats at once (after one warm-up turn in one chat)."""
    async with rig(database, latency, flood=flood, profile=profile) as r:
        await run_turns(r, first_chats(1), 0, limit=30)  # warm-up: imports, first connections
        cpu = CpuMeter(r.process.pid)
        started = time.monotonic()
        cpu.start()
        times = await run_turns(r, first_chats(chats), 1, limit=60 + chats)
        cpu.stop()
        elapsed = time.monotonic() - started
        wrong = sum(
            shown(r.telegram, FIRST_CHAT + i).count(r.model.text) == 0 for i in range(chats)
        )
    return summarize(times, expected=chats, cpu=cpu) | {
        "seconds": round(elapsed, 2),
        "replies_missing": wrong,
    }


async def seed_history(url: str, chat_id: int, count: int) -> None:
    """Migrate, then bulk-insert ``count`` finished messages into the chat's open conversation."""
    engine = create_async_engine(url)
    try:
        await upgrade_to_head(engine)
        async with engine.begin() as connection:
            await connection.execute(insert(User).values(id=chat_id, first_name="Alice"))
            await connection.execute(insert(Chat).values(id=chat_id, type="private"))
            result = await connection.execute(
                insert(Conversation).values(chat_id=chat_id).returning(Conversation.id)
            )
            conversation_id = result.scalar_one()
            counter = TokenCounter("gpt-4o-mini")
            tokens = {r: counter.count_message(r, f"{count}. {SEED_TEXT}") for r in Role}
            for start in range(0, count, SEED_BATCH):
                rows = [
                    {
                        "conversation_id": conversation_id,
                        "chat_id": chat_id,
                        "user_id": chat_id if n % 2 == 0 else None,
                        "role": Role.USER if n % 2 == 0 else Role.ASSISTANT,
                        "content": f"{n}. {SEED_TEXT}",
                        "token_count": tokens[Role.USER if n % 2 == 0 else Role.ASSISTANT],
                        "status": Status.COMPLETE,
                    }
                    for n in range(start, min(count, start + SEED_BATCH))
                ]
                await connection.execute(insert(Message), rows)
        if engine.dialect.name == "postgresql":  # what autovacuum would have done by now
            async with engine.connect() as connection:
                await connection.execution_options(isolation_level="AUTOCOMMIT")
                await connection.execute(text("VACUUM ANALYZE messages"))
    finally:
        await engine.dispose()


async def history_length(
    database: str, latency: Latency, sizes: list[int], turns: int
) -> dict[str, Any]:
    """The same turn (same prompt: the budget is full from ~10 messages on) per history size.

    Each size is its own conversation, all in one database and one bot process, and their
    turns alternate: whatever else loads the machine falls on every size alike.
    """
    chats = {size: FIRST_CHAT + i for i, size in enumerate(sizes)}
    seeded = time.monotonic()
    times: dict[int, list[TurnTimes]] = {size: [] for size in sizes}
    async with rig(
        database, latency, flood=False, history={chat: size for size, chat in chats.items()}
    ) as r:
        seed_s = time.monotonic() - seeded
        cpu = {size: CpuMeter(r.process.pid) for size in sizes}  # one turn runs at a time
        for turn in range(turns + 1):  # turn 0 warms up
            for size, chat in chats.items():
                if turn:
                    cpu[size].start()
                batch = await run_turns(r, [chat], turn, limit=30)
                if turn:
                    cpu[size].stop()
                    times[size].extend(batch)
    results = {str(size): summarize(times[size], expected=turns, cpu=cpu[size]) for size in sizes}
    medians = [results[str(s)]["update_to_request"]["p50_ms"] for s in sizes]
    ratio = round(max(medians) / min(medians), 3) if all(medians) else None
    return {
        "sizes": results,
        "setup_s": round(seed_s, 2),
        "p50_ratio_largest_to_smallest": ratio,
    }
