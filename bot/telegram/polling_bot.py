"""The bot whose getUpdates logs what it fetched before python-telegram-bot may confirm it.

Telegram counts an update delivered as soon as a getUpdates asks past it, and PTB's updater
sends that next getUpdates the moment it has queued the batch — before any handler has run,
so before the update log had the update. A kill in that gap lost the message for good
(Telegram would not send it again, and no log held it). Here the batch is written to the log
first (one group commit; `UpdateGate.prefetched` then answers the per-update check from
memory), so whatever Telegram forgets, the log has, and the next start replays it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.error import NetworkError
from telegram.ext import ExtBot

from bot.runtime.update_gate import UpdateGate

logger = logging.getLogger(__name__)


class PollingBot(ExtBot[Any]):
    """An `ExtBot` that logs each fetched batch of updates in the update log before returning it."""

    def __init__(self, *args: Any, gate: UpdateGate, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._gate = gate

    async def get_updates(self, *args: Any, **kwargs: Any) -> tuple[Update, ...]:
        updates = await super().get_updates(*args, **kwargs)
        if updates:
            await self._log(updates)
        return updates

    async def _log(self, updates: Sequence[Update]) -> None:
        try:
            await self._gate.prefetch(updates)
        except SQLAlchemyError as exc:
            # Not confirmed: PTB retries (with back-off) and Telegram sends the batch again.
            logger.warning("could not log %d fetched updates: %s", len(updates), type(exc).__name__)
            raise NetworkError("the update log is unavailable; fetching again") from None
