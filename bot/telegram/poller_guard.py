"""One poller per bot: a lease row in the database, taken before polling, kept by a heartbeat.

Polling mode only (webhook replicas share the work through `update_log`). At start-up, before
anything is handled, the lease is claimed with one atomic insert. A lease left by a process that
is provably dead is taken at once: same host and its pid is gone, or it carries this process's
own pid with a nonce this process does not hold (a container restarted with the same pid 1).
Any other holder is watched for one lease period: if its heartbeat moves, another instance is
running and this one stops (`AnotherPoller`); if it does not, the lease is taken over. Every
change is conditional on the holder seen before, so two instances starting together never both
win. A running bot that finds its lease taken stops the same way.

The lease is keyed by the bot id (the number before the colon of the token, public): Telegram
allows one poller per bot, so two bots sharing one database must not block each other.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.db import poller_lease
from bot.db.poller_lease import Lease
from bot.errors import BotError

logger = logging.getLogger(__name__)

WATCHES_PER_PERIOD = 15  # how often a held lease is looked at while waiting to see it move
BEATS_PER_PERIOD = 3  # a holder renews three times per lease period

_LIVE: set[str] = set()  # nonces of the leases this process holds or is claiming


class AnotherPoller(BotError):
    """Another process polls Telegram for this bot, so this one must not."""


@dataclass(frozen=True)
class Holder:
    """Who holds a lease: host name, pid and a nonce of the run."""

    host: str
    pid: int
    nonce: str

    @classmethod
    def mine(cls) -> Holder:
        return cls(socket.gethostname(), os.getpid(), secrets.token_hex(8))

    @classmethod
    def parse(cls, text: str) -> Holder | None:
        host, _, rest = text.rpartition(":")
        host, _, pid = host.rpartition(":")
        return cls(host, int(pid), rest) if host and pid.isdigit() else None

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.nonce}"


def describe(text: str) -> str:
    holder = Holder.parse(text)
    return f"pid {holder.pid} on {holder.host}" if holder else repr(text)


def provably_dead(holder: Holder) -> bool:
    """Whether the holder's process is known to be gone (only decidable on this host)."""
    if holder.host != socket.gethostname():
        return False
    if holder.pid == os.getpid():
        return holder.nonce not in _LIVE
    return not process_alive(holder.pid)


def process_alive(pid: int) -> bool:
    """Whether a process with this pid runs here (a killed, unreaped zombie does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, under another user
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def bot_id(token: str) -> int:
    return int(token.partition(":")[0])


def utcnow() -> datetime:
    return datetime.now(UTC)


class PollerGuard:
    """This process's claim to be the one poller of a bot."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bot: int,
        seconds: float,
        on_lost: Callable[[AnotherPoller], None],
    ) -> None:
        self._sessions = sessions
        self._bot = bot
        self._seconds = seconds
        self._on_lost = on_lost
        self._me = Holder.mine()
        self._heartbeat: asyncio.Task[None] | None = None
        self.held = False

    @classmethod
    def of(
        cls,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        on_lost: Callable[[AnotherPoller], None],
    ) -> PollerGuard:
        """The guard of the bot in `settings`, with its lease period."""
        token = settings.telegram_bot_token.get_secret_value()
        return cls(sessions, bot_id(token), settings.poller_lease_seconds, on_lost)

    async def acquire(self) -> None:
        """Take the lease, or raise `AnotherPoller` when a live process holds it."""
        _LIVE.add(self._me.nonce)
        try:
            await self._acquire()
        except BaseException:
            _LIVE.discard(self._me.nonce)
            raise
        self.held = True
        self._heartbeat = asyncio.create_task(self._beat(), name="poller-lease-heartbeat")
        logger.info("took the poller lease of bot %d", self._bot)

    async def _acquire(self) -> None:
        loop = asyncio.get_running_loop()
        watched: Lease | None = None
        watch_until = 0.0
        while (lease := await self._claim()) is not None:
            holder = Holder.parse(lease.holder)
            age = (utcnow() - lease.heartbeat_at).total_seconds()
            silent = watched == lease and loop.time() >= watch_until
            if (holder and provably_dead(holder)) or age > self._seconds or silent:
                logger.warning("taking over the poller lease of %s", describe(lease.holder))
                if await self._take_over(lease.holder):
                    return
                continue  # someone changed it first: look again
            if watched is None:
                watched, watch_until = lease, loop.time() + self._seconds
                logger.info(
                    "the poller lease is held by %s (heartbeat %.1fs ago): waiting to see "
                    "whether it is alive",
                    describe(lease.holder),
                    age,
                )
            elif lease != watched:
                raise AnotherPoller(
                    f"another instance is polling this bot ({describe(lease.holder)}, its "
                    "heartbeat in the database is moving); stop it first, or run several "
                    "replicas in webhook mode"
                )
            await asyncio.sleep(self._seconds / WATCHES_PER_PERIOD)

    async def _claim(self) -> Lease | None:
        """None when the lease is ours now, else who holds it."""
        while True:
            async with self._sessions.begin() as session:
                if await poller_lease.claim(session, self._bot, str(self._me), utcnow()):
                    return None
                lease = await poller_lease.current(session, self._bot)
            if lease is not None:
                return lease

    async def _take_over(self, previous: str) -> bool:
        async with self._sessions.begin() as session:
            return await poller_lease.take_over(
                session, self._bot, str(self._me), previous, utcnow()
            )

    async def _beat(self) -> None:
        while True:
            await asyncio.sleep(self._seconds / BEATS_PER_PERIOD)
            try:
                async with self._sessions.begin() as session:
                    kept = await poller_lease.renew(session, self._bot, str(self._me), utcnow())
                    lease = None if kept else await poller_lease.current(session, self._bot)
            except (SQLAlchemyError, OSError) as exc:
                logger.warning("could not renew the poller lease (%s)", type(exc).__name__)
                continue
            if not kept:
                self.held = False
                _LIVE.discard(self._me.nonce)
                taker = describe(lease.holder) if lease else "nobody"
                self._on_lost(
                    AnotherPoller(
                        f"the poller lease of this bot was taken by another instance ({taker}); "
                        "stopped polling so that only one instance polls"
                    )
                )
                return

    async def release(self) -> None:
        """Stop the heartbeat and let the lease go (if it is still ours)."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.wait([self._heartbeat])
            self._heartbeat = None
        if self.held:
            try:
                async with self._sessions.begin() as session:
                    await poller_lease.release(session, self._bot, str(self._me))
            except SQLAlchemyError as exc:
                logger.warning("could not release the poller lease (%s)", type(exc).__name__)
            self.held = False
        _LIVE.discard(self._me.nonce)
