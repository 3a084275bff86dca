"""Per-chat ordering: updates of one chat are handled one at a time, in arrival order;
different chats run concurrently. Control commands (/stop) skip the line, and a chat whose
queue is full gets a "busy" answer instead of waiting without bound.

With an `UpdateGate` the order also holds across replicas sharing PostgreSQL, and an update
that was taken before (a redelivery, possibly to another replica) is dropped; see
runtime/update_gate.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from telegram import Bot, Update
from telegram.ext import BaseUpdateProcessor

from bot.runtime.metrics import DUPLICATE_UPDATES
from bot.runtime.update_gate import UpdateGate

logger = logging.getLogger(__name__)

UpdateCheck = Callable[[Update], bool]
BusyReply = Callable[[Update], Awaitable[None]]
Process = Callable[[Update], Awaitable[None]]
REPLAY_ALL = 2**63 - 1  # above every update id


class ChatOrderedUpdateProcessor(BaseUpdateProcessor):
    """Serialises updates per chat with FIFO locks, dropped when a chat goes idle."""

    def __init__(
        self,
        *,
        max_concurrent_updates: int = 512,
        max_queued_per_chat: int = 5,
        skips_queue: UpdateCheck = lambda update: False,
        keeps_pending: UpdateCheck = lambda update: False,
        on_busy: BusyReply | None = None,
        gate: UpdateGate | None = None,
        records: bool = True,
    ) -> None:
        super().__init__(max_concurrent_updates)
        self._gate = gate
        self._records = records  # False when the webhook recorded updates before queueing them
        self.process_earlier: Process | None = None  # Application.process_update, once built
        self.running: set[asyncio.Task[Any]] = set()
        self._tails: dict[int, asyncio.Future[None]] = {}  # per chat: the last place in line
        self._holders: dict[int, int] = {}
        self._max_queued = max_queued_per_chat
        self._skips_queue = skips_queue
        # Updates that skip the line but are marked done by their handler, later (an album's
        # later items: done with the album's turn, so that a kill before it replays them).
        self._keeps_pending = keeps_pending
        self._on_busy = on_busy

    async def do_process_update(self, update: object, coroutine: Awaitable[Any]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.running.add(task)
        try:
            await self._ordered(update, coroutine)
        finally:
            if task is not None:
                self.running.discard(task)

    async def _ordered(self, update: object, coroutine: Awaitable[Any]) -> None:
        gate = self._gate if isinstance(update, Update) else None
        chat = update.effective_chat if isinstance(update, Update) else None
        if chat is None or (isinstance(update, Update) and self._skips_queue(update)):
            if gate is None or not self._records or await self._record(gate, update):
                await coroutine
                if not (isinstance(update, Update) and self._keeps_pending(update)):
                    await self._done(update)
            else:
                _discard(coroutine)
            return
        # One update runs and up to max_queued wait; past that the user is told to wait.
        if self._holders.get(chat.id, 0) > self._max_queued:
            assert isinstance(update, Update)
            _discard(coroutine)
            logger.info("chat %s: queue full, update %s answered busy", chat.id, update.update_id)
            if self._on_busy is not None:
                await self._on_busy(update)
            if gate is not None and self._records:
                await gate.record(update)
            await self._done(update)
            return
        # The place in the chat's line is taken now, on arrival, before any await: recording
        # the update takes a database round trip whose finishing order is anyone's guess.
        async with self._place(chat.id) as my_turn:
            if gate is not None and self._records and not await self._record(gate, update):
                _discard(coroutine)
                return
            await my_turn()
            if gate is None:
                await coroutine
            else:
                assert isinstance(update, Update)
                await self._in_turn(gate, chat.id, update, coroutine)

    @contextlib.asynccontextmanager
    async def _place(self, chat_id: int) -> AsyncIterator[Callable[[], Awaitable[None]]]:
        """A place at the end of the chat's line, taken on entry without suspending (nothing is
        awaited before the yield); yields a wait for the turn, which comes once every earlier
        place is left."""
        earlier = self._tails.get(chat_id)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._tails[chat_id] = mine
        self._holders[chat_id] = self._holders.get(chat_id, 0) + 1

        async def my_turn() -> None:
            if earlier is not None:
                await asyncio.shield(earlier)  # never cancel the place before ours

        try:
            yield my_turn
        finally:
            if earlier is None or earlier.done():
                mine.set_result(None)
            else:  # left before our turn: the next in line still waits for the earlier one
                earlier.add_done_callback(lambda _: mine.set_result(None))
            self._holders[chat_id] -= 1
            if not self._holders[chat_id]:
                del self._holders[chat_id]
            if self._tails.get(chat_id) is mine:
                del self._tails[chat_id]

    async def _in_turn(
        self, gate: UpdateGate, chat_id: int, update: Update, coroutine: Awaitable[Any]
    ) -> None:
        """Under the chat's shared lock: earlier pending updates first, then this one once."""
        async with gate.chat_turn(chat_id):
            # Another replica may have taken this chat's earlier updates, or this one, first.
            # One process alone needs no such check: its start-up replays what a killed run left.
            if gate.shared:
                await self._handle_earlier(gate, chat_id, update.update_id, update.get_bot())
                if await gate.is_done(update.update_id):
                    _discard(coroutine)
                    return
            await coroutine
            await gate.done(update.update_id)

    async def _handle_earlier(self, gate: UpdateGate, chat_id: int, before: int, bot: Bot) -> None:
        for earlier in await gate.earlier_pending(chat_id, before, bot):
            if await gate.is_done(earlier.update_id):
                continue  # answered meanwhile with an earlier one (an album's items)
            if self.process_earlier is not None:
                logger.info("chat %s: handling earlier update %s", chat_id, earlier.update_id)
                await self.process_earlier(earlier)
            await gate.done(earlier.update_id)

    async def replay_pending(self, bot: Bot) -> int:
        """Handle, in the background, the updates a killed run had taken but not handled (each
        chat in order, under its turn); return how many chats had some."""
        if self._gate is None:
            return 0
        chats = await self._gate.pending_chats()
        for chat_id in chats:
            task = asyncio.create_task(self._replay_chat(self._gate, chat_id, bot))
            self.running.add(task)
            task.add_done_callback(self.running.discard)
        return len(chats)

    def first_in_line(self, chat_id: int, work: Callable[[], Awaitable[None]]) -> None:
        """Run `work` in the background in the chat's turn, before anything queued later
        (start-up work: called before `replay_pending` and polling)."""

        async def in_turn() -> None:
            try:
                async with self._place(chat_id) as my_turn:
                    await my_turn()
                    await work()
            except Exception:
                logger.exception("chat %s: start-up work failed", chat_id)

        task = asyncio.create_task(in_turn())
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    async def _replay_chat(self, gate: UpdateGate, chat_id: int, bot: Bot) -> None:
        try:
            async with self._place(chat_id) as my_turn:
                await my_turn()
                async with gate.chat_turn(chat_id):
                    await self._handle_earlier(gate, chat_id, REPLAY_ALL, bot)
        except Exception:  # one chat's leftovers must not stop the others
            logger.exception("chat %s: replaying unfinished updates failed", chat_id)

    @staticmethod
    async def _record(gate: UpdateGate, update: object) -> bool:
        """Take the update in the shared log; False (and a log line) for a redelivery."""
        assert isinstance(update, Update)
        if await gate.record(update):
            return True
        DUPLICATE_UPDATES.inc()
        logger.info("update %s was taken before: ignored", update.update_id)
        return False

    async def _done(self, update: object) -> None:
        if self._gate is not None and isinstance(update, Update):
            await self._gate.done(update.update_id)

    async def finish_running(self, grace: float) -> int:
        """Let running updates finish for `grace` seconds, then cancel the rest; return how many
        were cancelled (their turns store what they had, marked interrupted)."""
        if not self.running:
            return 0
        _, late = await asyncio.wait(set(self.running), timeout=grace)
        for task in late:
            task.cancel()
        if late:
            await asyncio.wait(late)
        return len(late)

    def queued(self) -> int:
        """Updates waiting for, or holding, a chat's turn."""
        return sum(self._holders.values())

    async def initialize(self) -> None:
        """Nothing to set up."""

    async def shutdown(self) -> None:
        """Nothing to tear down."""


def _discard(coroutine: Awaitable[Any]) -> None:
    close = getattr(coroutine, "close", None)
    if close is not None:  # an un-awaited coroutine must be closed, or Python warns
        close()
