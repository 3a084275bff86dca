"""One conversation turn: store the user message, build the prompt, stream the reply, store it.

Telegram-agnostic: the reply is shown through a `ReplySink`. The user message is committed
before the model is called, and no transaction stays open while the model streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol, runtime_checkable

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.chat_config import ChatConfig, resolve
from bot.config import Settings
from bot.db import admin_store, store
from bot.db.models import Chat, Message, Status
from bot.errors import ContextLengthError, LLMError
from bot.llm.backends import ModelClient
from bot.llm.reasoning import ThinkSplitter
from bot.llm.tokens import TokenCounter
from bot.llm.types import ChatRequest, StreamEvent, Usage
from bot.prompt.calibration import RETRY_MARGIN, Calibration
from bot.prompt.fit import MessageTooLong, Prompt
from bot.prompt.recall import Recall, Remembered
from bot.prompt.summary import Summarizer, SummaryJob
from bot.reply_bounds import MESSAGE_CHARS, Bound, ReplyBounds, cut
from bot.reply_saves import ReplySaver
from bot.values import ChatInfo, HistoryItem, Role, UserInfo

logger = logging.getLogger(__name__)

CUT_BY_LIMIT_NOTICE = "[The reply was cut off at the token limit.]"
INTERRUPTED_NOTICE = "[The reply was interrupted: {reason}]"
STOPPED_NOTICE = "[Stopped.]"
STOPPED_EARLY = "Stopped before any reply."
EMPTY_REPLY = "The model returned an empty reply. Please try rephrasing your message."
BOUND_NOTICES = {
    Bound.LENGTH: "[The reply was stopped: it reached the length limit.]",
    Bound.MESSAGES: "[The reply was stopped: it reached the message limit.]",
    Bound.TIME: "[The reply was stopped: it reached the time limit.]",
}
RESTART_NOTICE = "[The reply was interrupted: the bot restarted.]"
MEASURE_MARGIN = 256  # characters: the notice, and rendering that is a little longer


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


@runtime_checkable
class ShowsMessages(Protocol):
    """A sink that shows a reply in numbered messages (Telegram): the turn stores their ids as
    they appear and keeps the reply within its message bound."""

    def watch(self, on_message: Callable[[Sequence[int]], Awaitable[None]]) -> None:
        """Call `on_message` with the message ids whenever a new message of the reply exists."""

    def messages_for(self, text: str) -> int:
        """How many messages `text` takes once shown in full."""


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

    async def question(self, message_id: int) -> Stored | None:
        """A stored user message, to be answered again (its reply was lost in a crash)."""
        async with self._sessions.begin() as session:
            message = await session.get(Message, message_id)
            chat = await session.get(Chat, message.chat_id) if message is not None else None
            if message is None or chat is None:
                return None
            config = await self.chat_config(session, chat)
        return Stored(
            message.conversation_id,
            message.id,
            chat,
            config,
            message.content,
            message.token_count,
            message.telegram_message_id,
        )

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
        reply.bounds = ReplyBounds.of(self._settings, stored.config.max_reply_tokens)
        reply.saver = saver = ReplySaver(
            self._sessions,
            reply.message_id,
            lambda: reply.text,
            lambda text: reply.counter.count_message(Role.ASSISTANT, text),
        )
        if isinstance(sink, ShowsMessages):
            sink.watch(saver.shown)
        saver.start()
        try:
            await sink.begin()
            error = await self._stream(stored, reply, sink, control)
            if not reply.text.strip():
                await sink.say(self._no_text_notice(error, control))
                await saver.close()
                async with saver.lock:
                    await self._record(reply, Status.FAILED, [])
                return Outcome.STOPPED if control.stopped else Outcome.FAILED
            shown = reply.text + self._notice(reply, error, control)
            await saver.save()  # the complete text, before the final Telegram call
            ids = await sink.finish(shown, reply.shown_reasoning(self._settings.show_reasoning))
            complete = error is None and not control.stopped and reply.bound is None
            await saver.close()
            async with saver.lock:
                status = Status.COMPLETE if complete else Status.INTERRUPTED
                await self._record(reply, status, ids)
        finally:
            await saver.close()
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
                    shown = reply.saver.telegram_ids if reply.saver else []
                    await asyncio.shield(self._record(reply, Status.INTERRUPTED, shown))
                    raise
            return None
        return None

    async def _consume(self, request: ChatRequest, reply: _Reply, sink: ReplySink) -> None:
        """Show the stream as it comes; stop it (closing the response) at a bound."""
        bounds = reply.bounds
        loop = asyncio.get_running_loop()
        deadline = loop.time() + bounds.seconds - (time.monotonic() - reply.started)
        events = self._client.stream(request)
        try:
            # Reaching a bound cancels the stream from inside (the scope expires at once): the
            # cancellation runs through every layer of the client and closes the response.
            async with asyncio.timeout_at(deadline) as scope:
                await self._show_events(events, reply, sink, scope)
        except TimeoutError:
            if reply.bound is None:
                if loop.time() < deadline:
                    raise  # not the time bound's
                reply.bound = Bound.TIME
            logger.warning(
                "chat %s: reply stopped at the %s bound", reply.chat_id, reply.bound.value
            )
        finally:
            await _close(events)
        if reply.bound is None:
            reply.thinking.finish()
            reply.text = self._bound_text(reply, sink, reply.thinking.answer, last=True)

    async def _show_events(
        self,
        events: AsyncIterator[StreamEvent],
        reply: _Reply,
        sink: ReplySink,
        scope: asyncio.Timeout,
    ) -> None:
        show = self._settings.show_reasoning
        async for event in events:
            if reply.bound is not None:
                continue  # the scope is cancelling the stream
            if event.reasoning:
                reply.thinking.add_reasoning(event.reasoning)
            if event.text:
                reply.thinking.feed(event.text)
            if event.text or (show and event.reasoning):
                reply.first_token = reply.first_token or time.monotonic()
                reply.text = self._bound_text(reply, sink, reply.thinking.answer)
                sink.push(reply.text, reply.shown_reasoning(show))
                reply.shown_chars = len(reply.text)
                if reply.bound is not None:
                    scope.reschedule(asyncio.get_running_loop().time())
                    continue
            reply.usage = event.usage or reply.usage
            reply.finish = event.finish_reason or reply.finish

    @staticmethod
    def _bound_text(reply: _Reply, sink: ReplySink, text: str, *, last: bool = False) -> str:
        """`text` within the reply's bounds; sets `reply.bound` when it had to be cut. Text
        already shown is never taken back."""
        bounds, shown = reply.bounds, reply.shown_chars
        if len(text) > bounds.chars:
            text = cut(text, bounds.chars, keep=shown)
            reply.bound = Bound.LENGTH
        # n messages hold at least (n - 1) × MESSAGE_CHARS: shorter texts need no measuring.
        due = last or len(text) + MEASURE_MARGIN >= bounds.messages * MESSAGE_CHARS
        if not isinstance(sink, ShowsMessages) or not due:
            return text
        notice = "\n\n" + BOUND_NOTICES[Bound.MESSAGES]
        if sink.messages_for(text + notice) <= bounds.messages:
            return text
        low, high = shown, len(text)  # the longest cut that fits, by bisection
        while low < high:
            middle = (low + high + 1) // 2
            if sink.messages_for(cut(text, middle, keep=shown) + notice) <= bounds.messages:
                low = middle
            else:
                high = middle - 1
        reply.bound = Bound.MESSAGES
        return cut(text, low, keep=shown)

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
        if reply.bound is not None:
            return "\n\n" + BOUND_NOTICES[reply.bound]
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
                reported=reply.usage is not None,
                latency_ms=round((now - reply.started) * 1000),
                first_token_ms=(
                    round((reply.first_token - reply.started) * 1000) if reply.first_token else None
                ),
            )


async def _close(events: AsyncIterator[StreamEvent]) -> None:
    """Close a model stream left early (a bound): its HTTP response goes with it."""
    aclose = getattr(events, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(Exception):
            await aclose()


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
    bounds: ReplyBounds = field(default_factory=lambda: ReplyBounds(2**62, 2**62, 1e9))
    bound: Bound | None = None  # the bound that stopped the reply, if one did
    shown_chars: int = 0  # how much of the text was pushed to the sink
    saver: ReplySaver | None = None
    thinking: ThinkSplitter = field(default_factory=ThinkSplitter)

    def shown_reasoning(self, show: bool) -> str:
        return self.thinking.reasoning if show else ""
