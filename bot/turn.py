"""One conversation turn: store the user message, build the prompt, stream the reply, store it.

Telegram-agnostic: the reply is shown through a `ReplySink`. The user message is committed
before the model is called, and no transaction stays open while the model streams.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.chat_config import ChatConfig, resolve
from bot.config import Settings
from bot.db import admin_store, store
from bot.db.models import Chat, Status
from bot.errors import ContextLengthError, LLMError
from bot.llm.backends import ModelClient
from bot.llm.reasoning import ThinkSplitter
from bot.llm.tokens import TokenCounter
from bot.llm.types import ChatRequest, Usage
from bot.prompt.calibration import RETRY_MARGIN, Calibration
from bot.prompt.fit import MessageTooLong, Prompt
from bot.prompt.recall import Recall, Remembered
from bot.prompt.summary import Summarizer, SummaryJob
from bot.values import ChatInfo, HistoryItem, Role, UserInfo

logger = logging.getLogger(__name__)

CUT_BY_LIMIT_NOTICE = "[The reply was cut off at the token limit.]"
INTERRUPTED_NOTICE = "[The reply was interrupted: {reason}]"
STOPPED_NOTICE = "[Stopped.]"
STOPPED_EARLY = "Stopped before any reply."
EMPTY_REPLY = "The model returned an empty reply. Please try rephrasing your message."
PARTIAL_SAVE_SECONDS = 2.0  # how much streamed text a killed process can lose at most


class ReplySink(Protocol):
    """Where a streamed reply is shown (a Telegram message, a terminal)."""

    async def begin(self) -> None:
        """The model is being asked (show a typing indicator)."""

    def push(self, text: str, reasoning: str = "") -> None:
        """The reply so far (and the thinking, when shown); must not block the stream."""

    async def finish(self, text: str, reasoning: str = "") -> list[int]:
        """Show the complete text; return the ids of the messages that hold it."""

    async def say(self, text: str) -> None:
        """Answer with a one-off notice instead of a reply."""


class TurnControl:
    """Lets another handler stop a running turn's model stream (/stop)."""

    def __init__(self) -> None:
        self.stopped = False
        self._stream: asyncio.Task[None] | None = None

    def attach(self, stream: asyncio.Task[None]) -> None:
        self._stream = stream
        if self.stopped:
            stream.cancel()

    def stop(self) -> None:
        self.stopped = True
        if self._stream is not None:
            self._stream.cancel()


@dataclass(frozen=True, slots=True)
class Incoming:
    chat: ChatInfo
    user: UserInfo
    text: str
    telegram_message_id: int
    thread_id: int | None = None  # the forum topic, in supergroups with topics


class Outcome(Enum):
    ANSWERED = "answered"
    INTERRUPTED = "interrupted"
    STOPPED = "stopped"
    FAILED = "failed"
    TOO_LONG = "too_long"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Stored:
    """A user message in the database, ready to be answered."""

    conversation_id: int
    message_id: int
    chat: Chat
    config: ChatConfig
    text: str
    tokens: int
    telegram_message_id: int | None

    @property
    def item(self) -> HistoryItem:
        """The message as the newest item of a prompt."""
        return HistoryItem(self.message_id, Role.USER, self.text, self.tokens)


def speaker(user: UserInfo) -> str:
    """How a group member is named in the shared history, so the model can tell people apart."""
    name = " ".join(p for p in (user.first_name, user.last_name) if p) or user.username or "User"
    return " ".join(name.split())[:64]


def memory_scope(chat: Chat, user_id: int) -> int | None:
    """The user a conversation belongs to: only in groups whose memory is per user."""
    return user_id if chat.type != "private" and chat.memory_mode == "user" else None


class TurnRunner:
    """Runs turns against one model endpoint and one database."""

    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], client: ModelClient
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._client = client
        salt = settings.user_hash_salt or settings.telegram_bot_token
        self._salt = salt.get_secret_value().encode()
        self.recall = Recall(settings, sessions, Calibration())
        self.summarizer = Summarizer(settings, sessions, client, self.recall, self.user_hash)

    async def aclose(self) -> None:
        """Stop background summary jobs (before the database goes away)."""
        await self.summarizer.aclose()

    def user_hash(self, user_id: int) -> str:
        """A stable pseudonym for the model's `user` field; never the raw Telegram id."""
        return hmac.new(self._salt, str(user_id).encode(), hashlib.sha256).hexdigest()[:32]

    async def reset(self, chat: ChatInfo, user: UserInfo, thread_id: int | None = None) -> None:
        """Close the current conversation; the next message opens a new one."""
        async with self._sessions.begin() as session:
            await store.upsert_user(session, user)
            row = await store.upsert_chat(session, chat)
            await store.close_conversation(session, chat.id, memory_scope(row, user.id), thread_id)

    async def remembered(
        self, chat: ChatInfo, user: UserInfo, thread_id: int | None = None
    ) -> Remembered:
        """What the bot would recall in this chat (or topic) on the next message."""
        async with self._sessions.begin() as session:
            row, conversation_id = await self._conversation(session, chat, user, thread_id)
            config = await self.chat_config(session, row)
        return await self.recall.remembered(conversation_id, config)

    async def _conversation(
        self, session: AsyncSession, chat: ChatInfo, user: UserInfo, thread_id: int | None
    ) -> tuple[Chat, int]:
        """The chat row and the open conversation of the user's memory scope (and topic)."""
        await store.upsert_user(session, user)
        row = await store.upsert_chat(session, chat)
        scope = memory_scope(row, user.id)
        return row, await store.open_conversation(session, chat.id, scope, thread_id)

    async def chat_config(self, session: AsyncSession, chat: Chat) -> ChatConfig:
        """The configuration in force for a chat, read fresh (admins may change it any time)."""
        found = await admin_store.preset(session, chat.preset) if chat.preset else None
        overrides = await admin_store.overrides(session)
        return resolve(self._settings, overrides, chat, found.text if found else None)

    async def run(
        self, incoming: Incoming, sink: ReplySink, control: TurnControl | None = None
    ) -> Outcome:
        """Answer a new user message.

        Storing it, reading the history for the prompt and adding the reply's pending row are
        one transaction, committed before the model is asked.
        """
        try:
            async with self._sessions.begin() as session:
                stored = await self._store_user_message(session, incoming)
                ready = await self._prepare(session, stored, incoming.user)
        except IntegrityError:
            logger.info("chat %s: message already handled, ignored", incoming.chat.id)
            return Outcome.DUPLICATE
        return await self._answer(stored, ready, sink, control or TurnControl())

    async def last_question(
        self, chat: ChatInfo, user: UserInfo, thread_id: int | None = None
    ) -> Stored | None:
        """The newest user message of the chat's conversation, its replies taken out of memory."""
        async with self._sessions.begin() as session:
            chat_row, conversation_id = await self._conversation(session, chat, user, thread_id)
            message = await store.last_user_message(session, conversation_id)
            if message is None:
                return None
            await store.replace_replies(session, message.id)
            config = await self.chat_config(session, chat_row)
        return Stored(
            conversation_id,
            message.id,
            chat_row,
            config,
            message.content,
            message.token_count,
            message.telegram_message_id,
        )

    async def answer(
        self, stored: Stored, user: UserInfo, sink: ReplySink, control: TurnControl
    ) -> Outcome:
        """Answer a user message stored before (/retry)."""
        async with self._sessions.begin() as session:
            ready = await self._prepare(session, stored, user)
        return await self._answer(stored, ready, sink, control)

    async def _store_user_message(self, session: AsyncSession, incoming: Incoming) -> Stored:
        chat, conversation_id = await self._conversation(
            session, incoming.chat, incoming.user, incoming.thread_id
        )
        config = await self.chat_config(session, chat)
        text = incoming.text
        if chat.type != "private":
            text = f"{speaker(incoming.user)}: {text}"
        text = store.without_nul(text)  # PostgreSQL cannot store it
        tokens = TokenCounter(config.model).count_message(Role.USER, text)
        message_id = await store.add_message(
            session,
            conversation_id=conversation_id,
            chat_id=chat.id,
            user_id=incoming.user.id,
            role=Role.USER,
            content=text,
            token_count=tokens,
            status=Status.COMPLETE,
            telegram_message_id=incoming.telegram_message_id,
        )
        return Stored(
            conversation_id, message_id, chat, config, text, tokens, incoming.telegram_message_id
        )

    async def _prepare(
        self, session: AsyncSession, stored: Stored, user: UserInfo
    ) -> _Reply | MessageTooLong:
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
        return _Reply(pending_id, stored.chat.id, user.id, prompt, model, counter)

    async def _answer(
        self, stored: Stored, ready: _Reply | MessageTooLong, sink: ReplySink, control: TurnControl
    ) -> Outcome:
        if isinstance(ready, MessageTooLong):
            await sink.say(
                f"Your message is too long for me ({ready.tokens} tokens; the limit is "
                f"{ready.limit}). Please shorten it or send it in parts."
            )
            return Outcome.TOO_LONG
        return await self._reply(stored, ready, sink, control)

    def _request(self, stored: Stored, prompt: Prompt, user_id: int) -> ChatRequest:
        return ChatRequest(
            model=stored.config.model,
            messages=prompt.messages,
            max_tokens=stored.config.max_reply_tokens,
            sampling=stored.config.sampling,
            user=self.user_hash(user_id),
            profile=stored.config.profile,
        )

    async def _reply(
        self, stored: Stored, reply: _Reply, sink: ReplySink, control: TurnControl
    ) -> Outcome:
        reply.started = time.monotonic()
        await sink.begin()
        error = await self._stream(stored, reply, sink, control)
        if not reply.text.strip():
            await sink.say(self._no_text_notice(error, control))
            await self._record(reply, Status.FAILED, [])
            return Outcome.STOPPED if control.stopped else Outcome.FAILED
        shown = reply.text + self._notice(reply, error, control)
        ids = await sink.finish(shown, reply.shown_reasoning(self._settings.show_reasoning))
        complete = error is None and not control.stopped
        await self._record(reply, Status.COMPLETE if complete else Status.INTERRUPTED, ids)
        known = reply.prompt.unsummarized_tokens
        job = SummaryJob(
            stored.chat.id,
            stored.conversation_id,
            reply.user_id,
            stored.config,
            None if known is None else known + reply.tokens,
        )
        self.summarizer.after_turn(job)
        if control.stopped:
            return Outcome.STOPPED
        return Outcome.ANSWERED if complete else Outcome.INTERRUPTED

    async def _stream(
        self, stored: Stored, reply: _Reply, sink: ReplySink, control: TurnControl
    ) -> LLMError | None:
        """Stream the reply; a context-length error before any text is retried once, trimmed."""
        for attempt in (1, 2):
            request = self._request(stored, reply.prompt, reply.user_id)
            stream = asyncio.create_task(self._consume(request, reply, sink))
            control.attach(stream)
            try:
                await stream
            except ContextLengthError as exc:
                calibration = self.recall.calibration
                calibration.learn_from_error(reply.model, reply.prompt.tokens, str(exc))
                if attempt == 2 or reply.text or control.stopped:
                    logger.warning("chat %s: prompt still too long: %s", stored.chat.id, exc)
                    return exc
                logger.info("chat %s: context length exceeded; trimming harder", stored.chat.id)
                try:
                    reply.prompt = await self.recall.prompt(
                        stored.conversation_id,
                        stored.config,
                        stored.item,
                        reply.counter,
                        shrink=RETRY_MARGIN,
                    )
                except MessageTooLong:
                    return exc
                continue
            except LLMError as exc:
                logger.warning("model stream failed in chat %s: %s", stored.chat.id, exc)
                return exc
            except asyncio.CancelledError:
                if _being_cancelled():  # the turn itself is cancelled (shutdown), not /stop
                    await asyncio.shield(self._record(reply, Status.INTERRUPTED, []))
                    raise
            return None
        return None

    async def _consume(self, request: ChatRequest, reply: _Reply, sink: ReplySink) -> None:
        show = self._settings.show_reasoning
        async for event in self._client.stream(request):
            if event.reasoning:
                reply.thinking.add_reasoning(event.reasoning)
            if event.text:
                reply.thinking.feed(event.text)
            if event.text or (show and event.reasoning):
                reply.first_token = reply.first_token or time.monotonic()
                reply.text = reply.thinking.answer
                sink.push(reply.text, reply.shown_reasoning(show))
                if time.monotonic() - reply.saved >= PARTIAL_SAVE_SECONDS:
                    await self._save_partial(reply)
            reply.usage = event.usage or reply.usage
            reply.finish = event.finish_reason or reply.finish
        reply.thinking.finish()
        reply.text = reply.thinking.answer

    @staticmethod
    def _no_text_notice(error: LLMError | None, control: TurnControl) -> str:
        if control.stopped:
            return STOPPED_EARLY
        return error.user_message if error else EMPTY_REPLY

    @staticmethod
    def _notice(reply: _Reply, error: LLMError | None, control: TurnControl) -> str:
        """What follows the shown text: why it ended early, if it did (never stored)."""
        if control.stopped:
            return "\n\n" + STOPPED_NOTICE
        if error is not None:
            return "\n\n" + INTERRUPTED_NOTICE.format(reason=error.user_message)
        if reply.finish == "length":
            return "\n\n" + CUT_BY_LIMIT_NOTICE
        return ""

    async def _record(self, reply: _Reply, status: Status, telegram_ids: list[int]) -> None:
        """Store the assistant message's final state, its parts and usage, in one transaction."""
        counter = reply.counter
        usage = reply.usage or Usage(reply.prompt.tokens, counter.count_text(reply.text))
        if reply.usage is not None:
            self.recall.calibration.observe(reply.model, reply.prompt.tokens, usage.prompt_tokens)
        now = time.monotonic()
        reply.tokens = counter.count_message(Role.ASSISTANT, reply.text)
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
            await store.add_parts(session, reply.message_id, telegram_ids)
            await store.add_usage(
                session,
                message_id=reply.message_id,
                chat_id=reply.chat_id,
                user_id=reply.user_id,
                model=reply.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                reported=reply.usage is not None,
                latency_ms=round((now - reply.started) * 1000),
                first_token_ms=(
                    round((reply.first_token - reply.started) * 1000) if reply.first_token else None
                ),
            )

    async def _save_partial(self, reply: _Reply) -> None:
        """Store the text so far on the pending row, so a crash keeps what the user saw."""
        reply.saved = time.monotonic()
        async with self._sessions.begin() as session:
            await store.finish_message(
                session,
                reply.message_id,
                content=reply.text,
                token_count=reply.counter.count_message(Role.ASSISTANT, reply.text),
            )


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


@dataclass(slots=True)
class _Reply:
    """The assistant reply being streamed."""

    message_id: int
    chat_id: int
    user_id: int
    prompt: Prompt
    model: str
    counter: TokenCounter
    text: str = ""
    tokens: int = 0  # of the text as stored
    usage: Usage | None = None
    finish: str | None = None
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None
    saved: float = field(default_factory=time.monotonic)  # when the partial text was last stored
    thinking: ThinkSplitter = field(default_factory=ThinkSplitter)

    def shown_reasoning(self, show: bool) -> str:
        return self.thinking.reasoning if show else ""
