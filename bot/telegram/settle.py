"""Start-up settlement of the replies a killed run left unfinished, so no user keeps a fragment.

A reply that had Telegram messages is stored `interrupted` and its last message is edited to
the stored text plus a short notice (any part the stored text has beyond the shown messages is
sent). A reply nothing was shown of is stored `failed` (in the transaction that adds its
successor) and the question is answered again, as
a normal streamed turn, first in the chat's line: before its pending updates are replayed
and before anything polled, so the order holds. Statuses are settled before polling starts.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.ext import ExtBot

from bot.config import Settings
from bot.db import store
from bot.db.models import Status
from bot.db.store import Unfinished
from bot.model_step import TurnControl
from bot.notices import Code, Notice
from bot.reply_bounds import ReplyBounds
from bot.reply_sink import Final
from bot.telegram.ordering import ChatOrderedUpdateProcessor
from bot.telegram.streamer import TelegramReply
from bot.turn import TurnRunner
from bot.values import UserInfo
from bot.wording import appended

logger = logging.getLogger(__name__)


async def settle_unfinished(
    bot: ExtBot[Any],
    sessions: async_sessionmaker[AsyncSession],
    runner: TurnRunner,
    settings: Settings,
    processor: ChatOrderedUpdateProcessor,
) -> int:
    """Settle every reply left pending; return how many there were. The statuses are stored
    now; each chat's Telegram work runs in the background, first in the chat's line.

    With replicas (webhook mode, advisory locks) another process may still be streaming a
    pending reply: only those begun longer ago than any reply may take are settled.
    """
    async with sessions.begin() as session:
        unfinished = await store.unfinished_replies(session, _surely_dead_before(settings))
        shown = [reply for reply in unfinished if reply.telegram_ids]
        lost = [reply for reply in unfinished if not reply.telegram_ids]
        # Answering again only what a /retry replay will not: its pending update re-runs it.
        again = {r.id for r in lost if r.question_id is not None and not r.retried}
        await store.settle_replies(session, [reply.id for reply in shown], Status.INTERRUPTED)
        # A reply answered again stays pending until its successor is stored (same
        # transaction), so a kill in between cannot leave the question unanswered.
        failed = [reply.id for reply in lost if reply.id not in again]
        await store.settle_replies(session, failed, Status.FAILED)
    if not unfinished:
        return 0
    logger.warning(
        "settling %d replies left unfinished by the previous run: %d shown in part, "
        "%d answered again",
        len(unfinished),
        len(shown),
        len(again),
    )
    settlement = Settlement(bot, sessions, runner, settings)
    by_chat: dict[int, list[Unfinished]] = {}
    for reply in unfinished:
        if reply.telegram_ids or reply.id in again:
            by_chat.setdefault(reply.chat_id, []).append(reply)
    for chat_id, replies in by_chat.items():
        processor.first_in_line(chat_id, partial(settlement.settle, replies))
    return len(unfinished)


def _surely_dead_before(settings: Settings) -> datetime | None:
    """None when this is the only process (polling holds the lease; a lone webhook); else the
    start time before which no live replica can still be streaming a reply."""
    if settings.mode != "webhook" or not settings.advisory_locks:
        return None
    contexts = [settings.context_tokens]
    contexts += [p.context_tokens for p in settings.model_profiles.values() if p.context_tokens]
    longest = ReplyBounds.of(settings, max(contexts)).seconds + settings.shutdown_grace_seconds
    return datetime.now(UTC) - timedelta(seconds=longest)


class Settlement:
    def __init__(
        self,
        bot: ExtBot[Any],
        sessions: async_sessionmaker[AsyncSession],
        runner: TurnRunner,
        settings: Settings,
    ) -> None:
        self._bot = bot
        self._sessions = sessions
        self._runner = runner
        self._settings = settings

    async def settle(self, replies: list[Unfinished]) -> None:
        """One chat's replies, oldest first."""
        for reply in replies:
            if reply.telegram_ids:
                await self.notify(reply)
            else:
                await self.answer_again(reply)

    def _reply(self, reply: Unfinished) -> TelegramReply:
        private = reply.chat_type == "private"
        s = self._settings
        return TelegramReply(
            self._bot,
            reply.chat_id,
            reply_to=reply.question_telegram_id,
            interval=s.edit_interval if private else s.group_edit_interval,
            thread_id=reply.thread_id,
            drafts=private and s.stream_mode == "draft",
        )

    async def notify(self, reply: Unfinished) -> None:
        """End the shown reply with the stored text and the notice (through the rate limiter)."""
        final = Final(reply.content, notice=Notice(Code.RESTARTED))
        logger.info("chat %s: marking reply %s interrupted", reply.chat_id, reply.id)
        sink = self._reply(reply)
        sink.resume(reply.telegram_ids, appended(final.text, final.notice))
        try:
            ids = await sink.finish(final)  # failures (deleted, blocked) are logged there
        except Exception:  # one chat's trouble must not stop the start-up
            logger.exception("chat %s: could not mark an interrupted reply", reply.chat_id)
            return
        finally:
            await sink.close()
        if ids != reply.telegram_ids and ids:
            async with self._sessions.begin() as session:
                await store.set_deliveries(session, reply.id, ids)

    async def answer_again(self, reply: Unfinished) -> None:
        """Answer the question anew, replying to the original Telegram message."""
        assert reply.question_id is not None
        stored = await self._runner.conversations.question(reply.question_id)
        if stored is None:
            logger.warning("chat %s: the question of reply %s is gone", reply.chat_id, reply.id)
            async with self._sessions.begin() as session:
                await store.settle_replies(session, [reply.id], Status.FAILED)
            return
        logger.info("chat %s: answering message %s again", reply.chat_id, reply.question_id)
        sink = self._reply(reply)
        user = UserInfo(reply.user_id or reply.chat_id)
        try:
            await self._runner.answer(stored, user, sink, TurnControl(), lost=reply.id)
        except Exception:
            logger.exception("chat %s: answering a lost reply again failed", reply.chat_id)
        finally:
            await sink.close()
