"""Shared machinery of `python -m bench`: timed emulators, fresh databases, concurrent turns.

Every time is on the ``time.monotonic()`` clock, taken by the emulators (never by bot code):
the Bot API emulator stamps each answer as it leaves, the OpenAI emulator stamps each request
as it arrives and each streamed chunk as it is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from aiohttp import web
from sqlalchemy.engine import make_url

from bot.config import Settings
from emulators.bot_api import ApiCall, BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from emulators.openai_stream import Pacer

POSTGRES_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
PY_SPY = (
    str(Path(sys.executable).with_name("py-spy")),
    "record",
    "--idle",
    "-f",
    "raw",
    "-r",
    "250",
)
PROJECT_ROOT = str(Path(__file__).resolve().parent.parent)
FINAL_METHODS = ("sendMessage", "editMessageText")  # calls that leave a real message
REPLY_WORDS = "Streaming a reply costs the bot almost nothing compared with the model itself."


@dataclass(frozen=True)
class Latency:
    """Telegram's round trip and the model's pace."""

    telegram: float = 0.04
    first_token: float = 0.3
    tokens_per_second: float = 50.0
    reply_tokens: int = 50


def reply_text(tokens: int) -> str:
    """About ``tokens`` o200k tokens of plain prose (roughly one token per word here)."""
    words = (REPLY_WORDS.split() * (tokens // 10 + 1))[: max(1, tokens)]
    return " ".join(words)


@dataclass
class ModelCall:
    """One chat completion as the OpenAI emulator saw it."""

    key: str
    request_at: float
    tokens: list[float] = field(default_factory=list)


class _TaskClock(Pacer):
    """The emulator's pacer, stamping each chunk with the request (handler task) it belongs to."""

    def __init__(self, calls: dict[int, ModelCall]) -> None:
        super().__init__()
        self.calls = calls

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        call = self.calls.get(id(asyncio.current_task()))
        if call is not None:
            call.tokens.append(time.monotonic())  # the chunk is written right after this


class TimedModel(OpenAIEmulator):
    """The OpenAI emulator answering every request with the same paced reply, timed per request.

    A request's key is its last user message, which the benchmark makes unique per chat/turn.
    """

    def __init__(self, latency: Latency) -> None:
        super().__init__()
        self.text = reply_text(latency.reply_tokens)
        self.latency = latency
        self.by_task: dict[int, ModelCall] = {}
        self.calls: list[ModelCall] = []
        self.responder = self._reply

    def _reply(self, body: dict[str, Any]) -> Reply:
        words = len(self.text.split())
        return Reply(
            text=self.text,
            chunk_chars=max(1, round(len(self.text) / words)),
            first_token_delay=self.latency.first_token,
            chunk_delay=1 / self.latency.tokens_per_second,
        )

    async def start(self, port: int = 0) -> None:
        await super().start(port)
        self._pacer = _TaskClock(self.by_task)  # read per request; also what stop() signals

    async def _record(self, request: web.Request) -> None:
        await super()._record(request)
        messages = self.requests[-1].body.get("messages") or [{}]
        call = ModelCall(str(messages[-1].get("content", "")), time.monotonic())
        self.by_task[id(asyncio.current_task())] = call
        self.calls.append(call)

    async def __aenter__(self) -> TimedModel:
        await self.start()
        return self


@contextlib.asynccontextmanager
async def fresh_database(kind: str) -> AsyncIterator[str]:
    """A new empty SQLite file or PostgreSQL database (like tests/conftest.py), then dropped."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            yield f"sqlite+aiosqlite:///{tmp}/bot.db"
        return
    base = make_url(POSTGRES_URL)
    name = f"bench_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(base.set(drivername="postgresql").render_as_string(False))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def postgres_reachable() -> str | None:
    """None when PostgreSQL answers, else why not."""
    url = make_url(POSTGRES_URL).set(drivername="postgresql").render_as_string(False)
    try:
        connection = await asyncpg.connect(url, timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        return f"{type(exc).__name__}: {exc}"
    await connection.close()
    return None


def bot_env(
    telegram: BotAPIEmulator, server: OpenAIEmulator, database_url: str, **extra: Any
) -> dict[str, str]:
    """Default settings (edit cadence, limits) pointed at the emulators, as environment."""
    values: dict[str, Any] = {
        "telegram_bot_token": telegram.token,
        "telegram_base_url": telegram.base_url.removesuffix("/bot"),
        "openai_base_url": server.base_url,
        "openai_api_key": "sk-test-key",
        "model": "gpt-4o-mini",
        "database_url": database_url,
        "system_prompt": "You are a helpful assistant.",
        "log_level": "WARNING",
    } | extra
    Settings(_env_file=None, **values)  # fail here, not in the child, on a bad value
    return {key.upper(): str(value) for key, value in values.items()}


@contextlib.asynccontextmanager
async def bot_process(
    env: dict[str, str], *, open_limits: bool = False, profile: Path | None = None
) -> AsyncIterator[asyncio.subprocess.Process]:
    """``python -m bot run`` (via bench.botproc) in a child process, stopped with SIGTERM.

    With ``profile``, py-spy samples the child (wall time, idle included) until it exits and
    writes collapsed stacks there.
    """
    args = ["-m", "bench.botproc", *(["--open-limits"] if open_limits else [])]
    child_env = {**os.environ, "PYTHONPATH": PROJECT_ROOT, **env}
    with tempfile.TemporaryDirectory(prefix="bench-bot-") as cwd:  # no stray .env file
        process = await asyncio.create_subprocess_exec(
            sys.executable, *args, env=child_env, cwd=cwd
        )
        spy = None
        if profile is not None:
            spy = await asyncio.create_subprocess_exec(
                *PY_SPY,
                "--pid",
                str(process.pid),
                "-o",
                str(profile),
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        try:
            yield process
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), 30)
                except TimeoutError:
                    process.kill()
                    await process.wait()
            if spy is not None:
                await spy.wait()


def peak_rss_mb(pid: int) -> float | None:
    """The process's peak resident set (VmHWM) in MiB, from /proc; None where unavailable."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="utf-8")
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children, their children...), from /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text(encoding="utf-8").rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # gone meanwhile
        parents[int(stat.parent.name)] = int(fields[1])
    found: list[int] = []
    level = [pid]
    while level:
        level = [child for child, parent in parents.items() if parent in level]
        found += level
    return found


def pss_mb(pids: list[int]) -> float:
    """The proportional set sizes (Pss) of these processes, summed, in MiB: each page shared
    by n of them counts 1/n in each (forked workers share their fork server's pages)."""
    total = 0
    for pid in pids:
        try:
            rollup = Path(f"/proc/{pid}/smaps_rollup").read_text(encoding="utf-8")
        except OSError:
            continue
        total += next((int(x.split()[1]) for x in rollup.splitlines() if x.startswith("Pss:")), 0)
    return round(total / 1024, 1)


def cpu_seconds(pid: int) -> float | None:
    """The process's CPU time so far (user + system, all its threads), from /proc; None where
    unavailable. Counted in clock ticks (10 ms on Linux): average it over many turns."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="utf-8")
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # after the command name, which may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """The bot process's CPU seconds spent between `start` and `stop`, summed over windows."""

    def __init__(self, pid: int) -> None:
        self._pid = pid
        self._since: float | None = None
        self.seconds: float | None = 0.0

    def start(self) -> None:
        self._since = cpu_seconds(self._pid)

    def stop(self) -> None:
        now = cpu_seconds(self._pid)
        if self._since is None or now is None or self.seconds is None:
            self.seconds = None
        else:
            self.seconds += now - self._since

    def ms_per_turn(self, turns: int) -> float | None:
        if self.seconds is None or not turns:
            return None
        return round(self.seconds * 1000 / turns, 2)


def prompt_for(chat_id: int, turn: int) -> str:
    """A user message unique per chat and turn (the model emulator keys its timings on it)."""
    return f"Question {turn} from chat {chat_id}: how does streaming work?"


def send_all(telegram: BotAPIEmulator, chat_ids: Iterable[int], turn: int) -> None:
    """Every chat's user writes at once (private chats)."""
    for chat_id in chat_ids:
        telegram.send_text(chat_id, prompt_for(chat_id, turn))


def shown(telegram: BotAPIEmulator, chat_id: int) -> str:
    return "\n\n".join(m.text for m in telegram.bot_messages(chat_id))


async def wait_replies(
    telegram: BotAPIEmulator, replies: dict[int, int], expected: str, limit: float
) -> None:
    """Wait until each chat shows the model's text ``replies[chat]`` times (or time out)."""

    def done() -> bool:
        return all(
            sum(m.text == expected for m in telegram.bot_messages(c)) >= n
            for c, n in replies.items()
        )

    with contextlib.suppress(AssertionError):  # what is missing is reported, not raised
        await telegram.wait_for(done, timeout=limit)


@dataclass(frozen=True)
class TurnTimes:
    """Overheads of one turn, in seconds; None when a moment was not seen."""

    to_request: float | None  # update received -> model request sent
    to_final: float | None  # last model token -> final edit sent


def turn_times(telegram: BotAPIEmulator, model: TimedModel, chat_id: int, turn: int) -> TurnTimes:
    """The two overheads of one chat's turn, from the emulators' records."""
    key = prompt_for(chat_id, turn)
    call = next((c for c in model.calls if c.key == key), None)
    delivered = delivered_at(telegram.calls, chat_id, key)
    to_request = None
    if call is not None and delivered is not None:
        to_request = call.request_at - delivered
    to_final = None
    if call is not None and call.tokens:
        last = call.tokens[-1]
        finals = [
            c.at - telegram.latency
            for c in telegram.calls
            if c.method in FINAL_METHODS
            and c.status == 200
            and c.params.get("chat_id") == chat_id
            and c.at - telegram.latency >= last
        ]
        to_final = max(finals) - last if finals else None
    return TurnTimes(to_request, to_final)


def delivered_at(calls: list[ApiCall], chat_id: int, text: str) -> float | None:
    """When the getUpdates answer carrying this chat's message left the emulator."""
    for call in calls:
        if call.method != "getUpdates" or call.status != 200:
            continue
        for update in call.response.get("result", []):
            message = update.get("message") or {}
            if message.get("text") == text and message.get("chat", {}).get("id") == chat_id:
                return call.at
    return None


def percentiles(values: Iterable[float | None]) -> dict[str, float | int | None]:
    """p50/p95/p99 (nearest rank) in milliseconds, and how many values there were."""
    data = sorted(v for v in values if v is not None)
    if not data:
        return {"n": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None}

    def rank(q: float) -> float:
        index = min(len(data) - 1, max(0, round(q * len(data) + 0.5) - 1))
        return round(data[index] * 1000, 2)

    return {"n": len(data), "p50_ms": rank(0.50), "p95_ms": rank(0.95), "p99_ms": rank(0.99)}
