"""Start-up settlement of the replies a killed run left unfinished, so no user keeps a fragment.

A reply that had Telegram messages is stored `interrupted` and its last message is edited to
the stored text plus a short notice (any part the stored text has beyond the shown messages is
sent). A reply nothing was shown of is stored `failed` and the question is answered again, as
a normal streamed turn, before the chat's pending updates are replayed, so the order holds.
Runs before polling; assumes one bot process per database (polling allows only one).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram.ext import ExtBot

from bot.config import Settings
from bot.db import store
from bot.db.models import Status
from bot.db.store import Unfinished, UserInfo
from bot.telegram.streamer import TelegramReply
from bot.turn import RESTART_NOTICE, TurnControl, TurnRunner

logger = logging.getLogger(__name__)


async def settle_unfinished(
    bot: ExtBot[Any],
    sessions: async_sessionmaker[AsyncSession],
    runner: TurnRunner,
    settings: Settings,
) -> int:
    """Settle every reply left pending; return how many there were."""
    async with sessions.begin() as session:
        unfinished = await store.unfinished_replies(session)
        shown = [reply for reply in unfinished if reply.telegram_ids]
        lost = [reply for reply in unfinished if not reply.telegram_ids]
        await store.settle_replies(session, [reply.id for reply in shown], Status.INTERRUPTED)
        await store.settle_replies(session, [reply.id for reply in lost], Status.FAILED)
    if not unfinished:
        return 0
    # Answering again only what a /retry replay will not: its pending update re-runs it.
    again = [r for r in lost if r.question_id is not None and not r.retried]
    logger.warning(
        "settling %d replies left unfinished by the previous run: %d shown in part, "
        "%d answered again",
        len(unfinished),
        len(shown),
        len(again),
    )
    settle = Settlement(bot, sessions, runner, settings)
    await asyncio.gather(
        *(settle.notify(reply) for reply in shown), *(settle.answer_again(r) for r in again)
    )
    return len(unfinished)


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
        text = f"{reply.content}\n\n{RESTART_NOTICE}" if reply.content.strip() else RESTART_NOTICE
        sink = self._reply(reply)
        sink.resume(reply.telegram_ids, text)
        try:
            ids = await sink.finish(text)  # failures (deleted, blocked) are logged there
        except Exception:  # one chat's trouble must not stop the start-up
            logger.exception("chat %s: could not mark an interrupted reply", reply.chat_id)
            return
        finally:
            await sink.close()
        if ids != reply.telegram_ids and ids:
            async with self._sessions.begin() as session:
                await store.set_parts(session, reply.id, ids)

    async def answer_again(self, reply: Unfinished) -> None:
        """Answer the question anew, replying to the original Telegram message."""
        assert reply.question_id is not None
        stored = await self._runner.question(reply.question_id)
        if stored is None:
            return
        sink = self._reply(reply)
        user = UserInfo(reply.user_id or reply.chat_id)
        try:
            await self._runner.answer(stored, user, sink, TurnControl())
        except Exception:
            logger.exception("chat %s: answering a lost reply again failed", reply.chat_id)
        finally:
            await sink.close()
