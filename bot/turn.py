"""One conversation turn: store the user message, build the prompt, stream the reply, store it.

An orchestrator of small units: `Conversations` (storing and finding messages), `ModelStep`
(the stream), `Recorder` (the reply's row) and the summarizer. Telegram-agnostic: the reply is
shown through a `ReplySink`, and what the user is told goes out as `Notice` codes. The user
message is committed before the model is called; no transaction stays open while it streams.
"""

from __future__ import annotations

import asyncio
import logging
import time
from enum import Enum

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.conversation import Conversations, Incoming, Stored
from bot.db import store
from bot.db.models import Status
from bot.errors import LLMError
from bot.llm.backends import ModelClient
from bot.llm.tokens import TokenCounter
from bot.llm.types import ChatRequest, FunctionTool
from bot.model_step import BOUND_CODES, ModelStep, StreamedReply, TurnControl
from bot.notices import Code, Notice
from bot.parts import ToolCallPart
from bot.prompt.calibration import Calibration
from bot.prompt.fit import MessageTooLong
from bot.prompt.recall import Recall
from bot.prompt.summary import Summarizer, SummaryJob
from bot.reply_bounds import ReplyBounds
from bot.reply_record import Recorder
from bot.reply_sink import Confirms, Final, ReplySink
from bot.tools.loop import ToolLoop
from bot.tools.registry import ToolSpec
from bot.tools.runner import Confirm
from bot.tools.toolbox import Toolbox
from bot.tools.types import ToolContext
from bot.values import Role, UserInfo

logger = logging.getLogger(__name__)


class Outcome(Enum):
    ANSWERED = "answered"
    INTERRUPTED = "interrupted"
    STOPPED = "stopped"
    FAILED = "failed"
    TOO_LONG = "too_long"
    DUPLICATE = "duplicate"


class TurnRunner:
    """Runs turns against one model endpoint and one database."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        client: ModelClient,
        toolbox: Toolbox | None = None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self.toolbox = toolbox
        calibration = Calibration()
        self.recall = Recall(settings, sessions, calibration)
        self.conversations = Conversations(settings, sessions, self.recall)
        self.summarizer = Summarizer(
            settings, sessions, client, self.recall, self.conversations.user_hash
        )
        self._step = ModelStep(settings, client, self.recall, calibration)
        self._recorder = Recorder(sessions, calibration)

    async def aclose(self) -> None:
        """Stop background summary jobs (before the database goes away)."""
        await self.summarizer.aclose()

    async def run(
        self, incoming: Incoming, sink: ReplySink, control: TurnControl | None = None
    ) -> Outcome:
        """Answer a new user message.

        Storing it, reading the history for the prompt and adding the reply's pending row are
        one transaction, committed before the model is asked.
        """
        try:
            async with self._sessions.begin() as session:
                stored = await self.conversations.store_user_message(session, incoming)
                ready = await self._prepare(session, stored, incoming.user)
        except IntegrityError:
            logger.info("chat %s: message already handled, ignored", incoming.chat.id)
            return Outcome.DUPLICATE
        return await self._answer(stored, ready, sink, control or TurnControl())

    async def answer(
        self,
        stored: Stored,
        user: UserInfo,
        sink: ReplySink,
        control: TurnControl,
        lost: int | None = None,
    ) -> Outcome:
        """Answer a user message stored before (/retry; after a crash, instead of the `lost`
        reply, stored `failed` in the transaction that adds the new one)."""
        async with self._sessions.begin() as session:
            if lost is not None:
                await store.settle_replies(session, [lost], Status.FAILED)
            ready = await self._prepare(session, stored, user)
        return await self._answer(stored, ready, sink, control)

    async def _prepare(
        self, session: AsyncSession, stored: Stored, user: UserInfo
    ) -> StreamedReply | MessageTooLong:
        """The prompt and the reply's pending row, or why the message cannot be answered."""
        model = stored.config.model
        counter = TokenCounter(model)
        try:
            prompt = await self.recall.prompt(
                stored.conversation_id, stored.config, stored.item, counter, session=session
            )
        except MessageTooLong as exc:
            await store.finish_message(session, stored.message_id, status=Status.REJECTED)
            return exc
        pending_id = await store.add_message(
            session,
            conversation_id=stored.conversation_id,
            chat_id=stored.chat.id,
            role=Role.ASSISTANT,
            content="",
            token_count=0,
            status=Status.PENDING,
            model=model,
            reply_to_id=stored.message_id,
        )
        return StreamedReply(pending_id, stored.chat.id, user.id, prompt, model, counter)

    async def _answer(
        self,
        stored: Stored,
        ready: StreamedReply | MessageTooLong,
        sink: ReplySink,
        control: TurnControl,
    ) -> Outcome:
        if isinstance(ready, MessageTooLong):
            await sink.say(Notice(Code.TOO_LONG, {"tokens": ready.tokens, "limit": ready.limit}))
            return Outcome.TOO_LONG
        return await self._reply(stored, ready, sink, control)

    def _request(
        self, stored: Stored, reply: StreamedReply, tools: tuple[FunctionTool, ...]
    ) -> ChatRequest:
        return ChatRequest(
            model=stored.config.model,
            messages=reply.prompt.messages,
            max_tokens=stored.config.max_reply_tokens,
            sampling=stored.config.sampling,
            user=self.conversations.user_hash(reply.user_id),
            profile=stored.config.profile,
            tools=tools,
        )

    def _tools(
        self, stored: Stored, reply: StreamedReply, sink: ReplySink
    ) -> tuple[ToolLoop | None, tuple[FunctionTool, ...]]:
        """This turn's tool loop and the tools it offers; (None, ()) when the chat has none."""
        toolbox = self.toolbox
        offered = toolbox.offered(stored.config.profile, stored.chat.tools_off) if toolbox else ()
        if toolbox is None or not offered:
            return None, ()
        confirm: Confirm | None = None
        if isinstance(sink, Confirms):
            asks = sink

            async def confirm(call: ToolCallPart, spec: ToolSpec, context: ToolContext) -> bool:
                return await asks.confirm(call, spec.name)

        context = ToolContext(chat_id=reply.chat_id, user_id=reply.user_id)
        return toolbox.loop(context, disabled=stored.chat.tools_off, confirm=confirm), offered

    async def _reply(
        self, stored: Stored, reply: StreamedReply, sink: ReplySink, control: TurnControl
    ) -> Outcome:
        reply.started = time.monotonic()
        reply.bounds = ReplyBounds.of(self._settings, stored.config.max_reply_tokens)
        saver = self._recorder.start(reply, sink)
        try:
            await sink.begin()
            loop, offered = self._tools(stored, reply, sink)
            request = self._request(stored, reply, offered)
            try:
                error = await self._step.run(stored, reply, request, sink, control, loop)
            except asyncio.CancelledError:  # shutdown: keep what was shown
                settle = self._recorder.record(reply, Status.INTERRUPTED, saver.telegram_ids)
                await asyncio.shield(settle)
                raise
            if not reply.text.strip():
                no_text = self._no_text_notice(error, control)
                shown: list[int] = []
                if reply.tools:  # the status lines give way to the notice
                    shown = await sink.finish(Final("", notice=no_text))
                else:
                    await sink.say(no_text)
                await self._recorder.settle(reply, Status.FAILED, shown)
                return Outcome.STOPPED if control.stopped else Outcome.FAILED
            # The complete text is saved while the final Telegram call goes out, not before it:
            # a kill in between leaves the last partial save, and start-up settlement edits the
            # message back to what is stored (with a notice), so the chat never shows more.
            saving = asyncio.create_task(saver.save())
            reasoning = reply.shown_reasoning(self._settings.show_reasoning)
            notice = self._notice(reply, error, control)
            attachments = tuple(reply.attachments)
            try:
                ids = await sink.finish(Final(reply.text, reasoning, notice, attachments))
            finally:
                await saving
            complete = error is None and not control.stopped and reply.bound is None
            status = Status.COMPLETE if complete else Status.INTERRUPTED
            await self._recorder.settle(reply, status, ids)
        finally:
            await saver.close()
        self._summarize(stored, reply)
        if control.stopped:
            return Outcome.STOPPED
        return Outcome.ANSWERED if complete else Outcome.INTERRUPTED

    def _summarize(self, stored: Stored, reply: StreamedReply) -> None:
        known = reply.prompt.unsummarized_tokens
        job = SummaryJob(
            stored.chat.id,
            stored.conversation_id,
            reply.user_id,
            stored.config,
            None if known is None else known + reply.tokens,
        )
        self.summarizer.after_turn(job)

    @staticmethod
    def _no_text_notice(error: LLMError | None, control: TurnControl) -> Notice:
        if control.stopped:
            return Notice(Code.STOPPED_EARLY)
        return Notice(error.problem if error else Code.EMPTY_REPLY)

    @staticmethod
    def _notice(
        reply: StreamedReply, error: LLMError | None, control: TurnControl
    ) -> Notice | None:
        """Why the shown text ended early, if it did (shown after it, never stored)."""
        if control.stopped:
            return Notice(Code.STOPPED)
        if reply.bound is not None:
            return Notice(BOUND_CODES[reply.bound])
        if error is not None:
            return Notice(Code.INTERRUPTED, {"reason": error.problem})
        if reply.finish == "length":
            return Notice(Code.CUT_BY_LIMIT)
        return None
