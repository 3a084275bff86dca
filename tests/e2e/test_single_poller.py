"""One poller per bot: real `python -m bot run` processes on one token.

A second process on the same database sees the first one's lease in the database and exits 3
before handling anything; a SIGKILLed holder does not delay a restart; two processes started
together leave exactly one polling; a bot whose lease is taken stops; and a second poller the
database cannot see (another database, a webhook set elsewhere) is caught by Telegram's 409.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import make_url

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import upgrade_to_head
from bot.db.models import PollerLease, Status
from bot.telegram.app import BotRuntime
from bot.telegram.poll_conflicts import START_WINDOW_SECONDS
from bot.telegram.poller_guard import AnotherPoller, PollerGuard
from bot.values import Role
from emulators.bot_api import BotAPIEmulator
from emulators.bot_api_methods import CONFLICT_POLL, CONFLICT_WEBHOOK
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import TEST_DATABASE_URL, SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages
from tests.e2e.test_restart import STORY, bot_environment, bot_process, wait_until_saved

ALICE = 1001
BOB = 2002
EXIT_ANOTHER_POLLER = 3
SAME_DATABASE = "another instance is polling this bot"
BOT_ID = 123456  # the emulator's token is 123456:TEST-TOKEN


@pytest.fixture
async def other_database_url(tmp_path: Path) -> AsyncIterator[str]:
    """A second empty database, as a misconfigured second deployment would use."""
    if not TEST_DATABASE_URL.startswith("postgresql"):
        (tmp_path / "other").mkdir()
        yield f"sqlite+aiosqlite:///{tmp_path / 'other' / 'bot.db'}"
        return
    base = make_url(TEST_DATABASE_URL)
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(base.set(drivername="postgresql").render_as_string(False))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def conflicts(telegram: BotAPIEmulator) -> list[str]:
    """Descriptions of every getUpdates Telegram refused."""
    return [c.response["description"] for c in telegram.calls_for("getUpdates") if c.status == 409]


async def exit_code(process: asyncio.subprocess.Process, log: Path) -> int:
    try:
        return await asyncio.wait_for(process.wait(), 60)
    except TimeoutError:
        raise AssertionError(f"still running, see {log}") from None


def error_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if line.startswith("error:")]


async def test_a_second_process_on_the_same_database_exits_3_and_handles_nothing(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    env = bot_environment(database_url, telegram, model)
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    async with bot_process(env, first_log) as first:
        telegram.send_text(ALICE, "first")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: first"), timeout=60)
        model.enqueue(Reply(text=STORY, chunk_chars=6, chunk_delay=0.1))
        telegram.send_text(ALICE, "tell me a long story")
        await wait_until_saved(database_url, ALICE)  # a reply is streaming: nothing settles it
        async with bot_process(env, second_log) as second:
            telegram.send_text(BOB, "while a second one starts")
            assert await exit_code(second, second_log) == EXIT_ANOTHER_POLLER
        [line] = error_lines(second_log)
        assert SAME_DATABASE in line and "webhook mode" in line
        assert "polling for updates" not in second_log.read_text()
        await telegram.wait_for(lambda: shows(telegram, BOB, "Echo: while a second one starts"))
        await telegram.wait_for(lambda: shows(telegram, ALICE, STORY), timeout=60)
        telegram.send_text(ALICE, "after")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: after"), timeout=30)
        assert first.returncode is None, "the first one goes on"
        first.send_signal(signal.SIGTERM)
        assert await exit_code(first, first_log) == 0

    assert conflicts(telegram) == [], "the second never polled"
    asked = Counter(r["messages"][-1]["content"] for r in model.chat_requests())
    assert asked == Counter(["first", "tell me a long story", "while a second one starts", "after"])
    alice = await stored_messages(database_url, ALICE)
    assert [(m.role, m.status) for m in alice] == [
        (Role.USER, Status.COMPLETE),
        (Role.ASSISTANT, Status.COMPLETE),
    ] * 3, "the second instance did not settle the reply that was streaming"
    assert "closed" not in second_log.read_text()


async def test_a_killed_poller_does_not_block_an_immediate_restart(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    env = bot_environment(database_url, telegram, model)
    log = tmp_path / "bot.log"
    async with bot_process(env, log) as first:
        await telegram_answers(telegram, ALICE, "one")
        first.send_signal(signal.SIGKILL)
        await first.wait()
    before = log.read_text()
    async with bot_process(env, log) as second:
        await telegram_answers(telegram, ALICE, "two")
        second.send_signal(signal.SIGTERM)
        assert await exit_code(second, log) == 0
    restart = log.read_text().removeprefix(before)
    assert "taking over the poller lease" in restart
    assert "waiting to see whether it is alive" not in restart, "a dead pid is not waited out"


async def telegram_answers(telegram: BotAPIEmulator, chat_id: int, text: str) -> None:
    telegram.send_text(chat_id, text)
    await telegram.wait_for(lambda: shows(telegram, chat_id, f"Echo: {text}"), timeout=60)


async def test_two_processes_started_together_leave_exactly_one_polling(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    env = bot_environment(database_url, telegram, model)
    await migrated(database_url)  # both start from the lease, not from a migration race
    logs = [tmp_path / "a.log", tmp_path / "b.log"]
    async with bot_process(env, logs[0]) as a, bot_process(env, logs[1]) as b:
        done, _ = await asyncio.wait(
            [asyncio.create_task(a.wait()), asyncio.create_task(b.wait())],
            timeout=60,
            return_when=asyncio.FIRST_COMPLETED,
        )
        assert len(done) == 1, "one of them stops"
        loser, winner = (a, b) if a.returncode is not None else (b, a)
        assert loser.returncode == EXIT_ANOTHER_POLLER
        await telegram_answers(telegram, ALICE, "who answers?")
        assert winner.returncode is None
        winner.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(winner.wait(), 60) == 0
    assert conflicts(telegram) == []
    assert [m.text for m in telegram.bot_messages(ALICE)] == ["Echo: who answers?"]


async def migrated(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


async def test_a_bot_whose_lease_is_taken_stops_polling_and_exits_3(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    env = bot_environment(database_url, telegram, model) | {"POLLER_LEASE_SECONDS": "3"}
    log = tmp_path / "bot.log"
    async with bot_process(env, log) as process:
        await telegram_answers(telegram, ALICE, "hello")
        engine = create_engine(database_url)
        try:
            async with create_sessionmaker(engine).begin() as session:
                await session.execute(
                    update(PollerLease)
                    .where(PollerLease.bot_id == BOT_ID)
                    .values(holder="elsewhere:77:feed", heartbeat_at=datetime.now(UTC))
                )
        finally:
            await engine.dispose()
        assert await exit_code(process, log) == EXIT_ANOTHER_POLLER
    [line] = error_lines(log)
    assert "taken by another instance (pid 77 on elsewhere)" in line
    assert conflicts(telegram) == []
    assert await lease_holder(database_url) == "elsewhere:77:feed", "the taker keeps it"


async def lease_holder(database_url: str) -> str | None:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            holder: str | None = await session.scalar(select(PollerLease.holder))
            return holder
    finally:
        await engine.dispose()


async def test_a_second_poller_on_another_database_stops_at_telegrams_conflict(
    tmp_path: Path,
    database_url: str,
    other_database_url: str,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
) -> None:
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    env = bot_environment(database_url, telegram, model)
    other_env = bot_environment(other_database_url, telegram, model)
    async with bot_process(env, first_log) as first:
        await telegram_answers(telegram, ALICE, "one")
        await asyncio.sleep(START_WINDOW_SECONDS)  # the first one is past its start-up window
        async with bot_process(other_env, second_log) as second:
            assert await exit_code(second, second_log) == EXIT_ANOTHER_POLLER
        [line] = error_lines(second_log)
        assert line == f"error: Telegram refused getUpdates: {CONFLICT_POLL}"
        await telegram_answers(telegram, BOB, "two")
        assert first.returncode is None, "the established poller rides out one Conflict"
        first.send_signal(signal.SIGTERM)
        assert await exit_code(first, first_log) == 0
    assert conflicts(telegram) == [CONFLICT_POLL] * 2, "one each; the stopping one polled no more"
    assert [m.content for m in await stored_messages(database_url, BOB)] == ["two", "Echo: two"]
    assert await lease_holder(database_url) is None, "released on a clean stop"


async def test_a_webhook_set_elsewhere_stops_the_poller(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    log = tmp_path / "bot.log"
    async with bot_process(bot_environment(database_url, telegram, model), log) as process:
        await telegram_answers(telegram, ALICE, "one")
        await asyncio.sleep(START_WINDOW_SECONDS)
        async with httpx.AsyncClient() as http:  # a webhook deployment of the same bot starts
            url = f"{telegram.base_url}{telegram.token}/setWebhook"
            answer = await http.post(url, json={"url": "https://example.org/hook"})
            assert answer.json() == {"ok": True, "result": True}
        assert await exit_code(process, log) == EXIT_ANOTHER_POLLER
    [line] = error_lines(log)
    assert line == f"error: Telegram refused getUpdates: {CONFLICT_WEBHOOK}"
    assert conflicts(telegram)[-1] == CONFLICT_WEBHOOK
    last = telegram.calls_for("getUpdates")[-1]
    assert last.status == 409, "no getUpdates after the bot decided to stop"


async def test_one_stray_get_updates_does_not_stop_an_established_poller(
    make_settings: SettingsFactory, telegram: BotAPIEmulator
) -> None:
    async with BotRuntime(make_settings()) as runtime:
        await ask(telegram, ALICE, "one")
        await asyncio.sleep(START_WINDOW_SECONDS)
        async with httpx.AsyncClient() as http:  # someone tries getUpdates by hand, once
            url = f"{telegram.base_url}{telegram.token}/getUpdates"
            assert (await http.post(url, json={"timeout": 0})).json()["ok"]
        await telegram.wait_for(lambda: len(conflicts(telegram)) == 1)
        await ask(telegram, ALICE, "two")
        assert not runtime.must_stop.is_set()


async def test_a_conflict_during_start_up_stops_the_runtime_without_polling_again(
    make_settings: SettingsFactory, telegram: BotAPIEmulator
) -> None:
    async with BotRuntime(make_settings()) as runtime:
        async with httpx.AsyncClient() as http:  # a newer poller cuts this one's long poll
            url = f"{telegram.base_url}{telegram.token}/getUpdates"
            poll = asyncio.create_task(http.post(url, json={"timeout": 2}))
            await asyncio.wait_for(runtime.must_stop.wait(), 30)
            assert (await poll).json() == {"ok": True, "result": []}
        assert runtime.halted_by is not None
        assert str(runtime.halted_by) == f"Telegram refused getUpdates: {CONFLICT_POLL}"
    assert conflicts(telegram) == [CONFLICT_POLL], "the other poller's long poll was not cut"


async def test_a_lease_left_on_another_host_is_taken_once_its_heartbeat_stays_still(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, database_url: str
) -> None:
    await migrated(database_url)
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            now = datetime.now(UTC)
            session.add(
                PollerLease(bot_id=BOT_ID, holder="far:1:aa", acquired_at=now, heartbeat_at=now)
            )
    finally:
        await engine.dispose()
    async with BotRuntime(make_settings(poller_lease_seconds=2)):
        await ask(telegram, ALICE, "taken over")
        assert await lease_holder(database_url) != "far:1:aa"


async def test_a_long_stale_lease_is_taken_at_once(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, database_url: str
) -> None:
    await migrated(database_url)
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            old = datetime.now(UTC) - timedelta(hours=1)
            session.add(
                PollerLease(bot_id=BOT_ID, holder="far:1:aa", acquired_at=old, heartbeat_at=old)
            )
    finally:
        await engine.dispose()
    async with BotRuntime(make_settings()):
        await ask(telegram, ALICE, "hello")
        holder = await lease_holder(database_url)
        assert holder is not None and holder.split(":")[1] == str(os.getpid())
    assert await lease_holder(database_url) is None


async def contend(database_url: str, count: int) -> list[BaseException | None]:
    """`count` leases on their own engines acquire at the same moment; what each one got.

    The lease period is long enough that the winner's heartbeat (every 2 s) is never a whole
    period late on a loaded machine: a late one would rightly be taken over, a second winner.
    """
    engines = [create_engine(database_url) for _ in range(count)]
    leases = [
        PollerGuard(create_sessionmaker(engine), BOT_ID, 6.0, lambda reason: None)
        for engine in engines
    ]
    try:
        results = await asyncio.gather(
            *(lease.acquire() for lease in leases), return_exceptions=True
        )
        return list(results)
    finally:
        for lease in leases:
            await lease.release()
        for engine in engines:
            await engine.dispose()


async def test_leases_claimed_at_the_same_moment_have_exactly_one_winner(
    database_url: str,
) -> None:
    await migrated(database_url)
    results = await contend(database_url, 5)
    assert results.count(None) == 1, results
    assert all(isinstance(r, AnotherPoller) for r in results if r is not None)


async def test_a_dead_holder_taken_over_at_the_same_moment_has_exactly_one_successor(
    database_url: str,
) -> None:
    await migrated(database_url)
    dead = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await dead.wait()
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine).begin() as session:
            now = datetime.now(UTC)
            holder = f"{socket.gethostname()}:{dead.pid}:dead"
            session.add(
                PollerLease(bot_id=BOT_ID, holder=holder, acquired_at=now, heartbeat_at=now)
            )
    finally:
        await engine.dispose()
    results = await contend(database_url, 5)
    assert results.count(None) == 1, results
    assert all(isinstance(r, AnotherPoller) for r in results if r is not None)


async def test_two_bots_sharing_a_database_hold_a_lease_each(database_url: str) -> None:
    await migrated(database_url)
    engine = create_engine(database_url)
    sessions = create_sessionmaker(engine)
    first = PollerGuard(sessions, 111, 15, lambda reason: None)
    second = PollerGuard(sessions, 222, 15, lambda reason: None)
    try:
        await first.acquire()
        await second.acquire()
        assert first.held and second.held
    finally:
        await first.release()
        await second.release()
        await engine.dispose()


async def test_the_emulator_cuts_an_earlier_long_poll_at_once_with_telegrams_409(
    telegram: BotAPIEmulator,
) -> None:
    url = f"{telegram.base_url}{telegram.token}/getUpdates"
    async with httpx.AsyncClient(timeout=60) as http:
        earlier = asyncio.create_task(http.post(url, json={"timeout": 50}))
        await telegram.wait_for(lambda: telegram.state.active_polls == 1)
        later = asyncio.create_task(http.post(url, json={"timeout": 50}))
        cut = await asyncio.wait_for(earlier, 10)  # well before either long poll's 50 s
        assert cut.status_code == 409
        assert cut.json() == {"ok": False, "error_code": 409, "description": CONFLICT_POLL}
        assert not later.done(), "the newer long poll goes on"
        telegram.send_text(ALICE, "hi")
        assert [u["message"]["text"] for u in (await later).json()["result"]] == ["hi"]
