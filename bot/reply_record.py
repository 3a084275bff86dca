"""The reply's row from the moment it streams to its final state: partial saves while it is
shown, then the final text, status, Telegram message ids and usage in one transaction.

The usage the server reports is compared with our count of the prompt, so the calibration
learns how far off the tokenizer is for the model (for replies of one step: a tool loop's
later prompts are not the one we counted).

A reply that used tools is stored as its ordered parts — each step's text, its calls, their
results, then the answer — so replaying it later gives the API every call with its result.
"""

from __future__ import annotations

import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.db import store
from bot.db.models import Status
from bot.llm.types import Usage
from bot.model_step import StreamedReply
from bot.parts import TextPart
from bot.prompt.calibration import Calibration
from bot.reply_saves import ReplySaver
from bot.reply_sink import ReplySink, ShowsMessages
from bot.values import Role


class Recorder:
    """Stores replies; one per runner, shared by every turn."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], calibration: Calibration
    ) -> None:
        self._sessions = sessions
        self._calibration = calibration

    def start(self, reply: StreamedReply, sink: ReplySink) -> ReplySaver:
        """Begin saving the reply's text (and the messages showing it) while it streams."""
        reply.saver = saver = ReplySaver(
            self._sessions,
            reply.message_id,
            lambda: reply.text,
            lambda text: reply.counter.count_message(Role.ASSISTANT, text),
        )
        if isinstance(sink, ShowsMessages):
            sink.watch(saver.shown)
        saver.start()
        return saver

    async def settle(self, reply: StreamedReply, status: Status, telegram_ids: list[int]) -> None:
        """Stop the saves, then store the final state (no save runs after it)."""
        saver = reply.saver
        if saver is None:
            await self.record(reply, status, telegram_ids)
            return
        await saver.close()
        async with saver.lock:
            await self.record(reply, status, telegram_ids)

    async def record(self, reply: StreamedReply, status: Status, telegram_ids: list[int]) -> None:
        """Store the assistant message's final state, its parts and usage, in one transaction."""
        counter = reply.counter
        reported = reply.total_usage()
        usage = reported or Usage(reply.prompt.tokens, counter.count_text(reply.text))
        if reply.usage is not None and not reply.parts:
            self._calibration.observe(reply.model, reply.prompt.tokens, usage.prompt_tokens)
        now = time.monotonic()
        reply.tokens = counter.count_message(Role.ASSISTANT, reply.text)
        parts = reply.parts + ([TextPart(reply.text)] if reply.text.strip() else [])
        counted = counter.counted(tuple(parts)) if reply.parts else ()
        if counted:
            reply.tokens = counter.count_content(Role.ASSISTANT, counted)
        first_token_ms = None
        if reply.first_token:
            first_token_ms = round((reply.first_token - reply.started) * 1000)
        async with self._sessions.begin() as session:
            await store.finish_message(
                session,
                reply.message_id,
                content=reply.text,
                reasoning=reply.thinking.reasoning or None,
                token_count=reply.tokens,
                status=status,
                telegram_message_id=telegram_ids[0] if telegram_ids else None,
            )
            if counted:
                await store.set_parts(session, reply.message_id, counted)
            if reply.saver is None or reply.saver.stored_ids != telegram_ids:
                await store.set_deliveries(session, reply.message_id, telegram_ids)
            await store.add_usage(
                session,
                message_id=reply.message_id,
                chat_id=reply.chat_id,
                user_id=reply.user_id,
                model=reply.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                reported=reported is not None,
                latency_ms=round((now - reply.started) * 1000),
                first_token_ms=first_token_ms,
            )
