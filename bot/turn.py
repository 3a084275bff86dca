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
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.db import store
from bot.db.models import Chat, Role, Status
from bot.db.store import ChatInfo, HistoryItem, UserInfo
from bot.errors import LLMError
from bot.llm.client import ChatClient
from bot.llm.tokens import TokenCounter
from bot.llm.types import ChatRequest, Sampling, Usage
from bot.memory import MessageTooLong, Prompt, build_prompt

logger = logging.getLogger(__name__)

CUT_BY_LIMIT_NOTICE = "[The reply was cut off at the token limit.]"
INTERRUPTED_NOTICE = "[The reply was interrupted: {reason}]"
EMPTY_REPLY = "The model returned an empty reply. Please try rephrasing your message."


class ReplySink(Protocol):
    """Where a streamed reply is shown (a Telegram message, a terminal)."""

    async def begin(self) -> None:
        """The model is being asked (show a typing indicator)."""

    def push(self, text: str) -> None:
        """The reply so far; must not block the stream."""

    async def finish(self, text: str) -> list[int]:
        """Show the complete text; return the ids of the messages that hold it."""

    async def say(self, text: str) -> None:
        """Answer with a one-off notice instead of a reply."""


@dataclass(frozen=True, slots=True)
class Incoming:
    chat: ChatInfo
    user: UserInfo
    text: str
    telegram_message_id: int


class Outcome(Enum):
    ANSWERED = "answered"
    INTERRUPTED = "interrupted"
    FAILED = "failed"
    TOO_LONG = "too_long"
    DUPLICATE = "duplicate"


@dataclass(frozen=True, slots=True)
class Stored:
    conversation_id: int
    message_id: int
    chat: Chat
    tokens: int


class TurnRunner:
    """Runs turns against one model endpoint and one database."""

    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], client: ChatClient
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._client = client
        salt = settings.user_hash_salt or settings.telegram_bot_token
        self._salt = salt.get_secret_value().encode()

    def user_hash(self, user_id: int) -> str:
        """A stable pseudonym for the model's `user` field; never the raw Telegram id."""
        return hmac.new(self._salt, str(user_id).encode(), hashlib.sha256).hexdigest()[:32]

    async def reset(self, chat: ChatInfo, user: UserInfo) -> None:
        """Close the current conversation; the next message opens a new one."""
        async with self._sessions.begin() as session:
            await store.upsert_user(session, user)
            await store.upsert_chat(session, chat)
            await store.close_conversation(session, chat.id, None)

    async def run(self, incoming: Incoming, sink: ReplySink) -> Outcome:
        stored = await self._store_user_message(incoming)
        if stored is None:
            logger.info("chat %s: message already handled, ignored", incoming.chat.id)
            return Outcome.DUPLICATE
        model = stored.chat.model or self._settings.model
        counter = TokenCounter(model)
        try:
            prompt = await self._build_prompt(stored, incoming.text, counter)
        except MessageTooLong as exc:
            await self._set_status(stored.message_id, Status.REJECTED)
            await sink.say(
                f"Your message is too long for me ({exc.tokens} tokens; the limit is {exc.limit})."
                " Please shorten it or send it in parts."
            )
            return Outcome.TOO_LONG
        return await self._reply(incoming, stored, prompt, model, counter, sink)

    async def _store_user_message(self, incoming: Incoming) -> Stored | None:
        try:
            async with self._sessions.begin() as session:
                await store.upsert_user(session, incoming.user)
                chat = await store.upsert_chat(session, incoming.chat)
                conversation_id = await store.open_conversation(session, chat.id, None)
                counter = TokenCounter(chat.model or self._settings.model)
                tokens = counter.count_message(Role.USER, incoming.text)
                message = await store.add_message(
                    session,
                    conversation_id=conversation_id,
                    chat_id=chat.id,
                    user_id=incoming.user.id,
                    role=Role.USER,
                    content=incoming.text,
                    token_count=tokens,
                    status=Status.COMPLETE,
                    telegram_message_id=incoming.telegram_message_id,
                )
        except IntegrityError:
            return None
        return Stored(conversation_id, message.id, chat, tokens)

    async def _build_prompt(self, stored: Stored, text: str, counter: TokenCounter) -> Prompt:
        system_prompt = stored.chat.system_prompt or self._settings.system_prompt
        max_reply = stored.chat.max_reply_tokens or self._settings.max_reply_tokens
        new = HistoryItem(stored.message_id, Role.USER, text, stored.tokens)
        async with self._sessions() as session:
            history = store.history_newest_first(session, stored.conversation_id, stored.message_id)
            async with contextlib.aclosing(history):
                return await build_prompt(
                    system_prompt=system_prompt,
                    new_message=new,
                    history=history,
                    budget=self._settings.context_tokens - max_reply,
                    counter=counter,
                )

    def _request(self, stored: Stored, prompt: Prompt, model: str, user_id: int) -> ChatRequest:
        s, chat = self._settings, stored.chat
        sampling = Sampling(
            temperature=chat.temperature if chat.temperature is not None else s.temperature,
            top_p=chat.top_p if chat.top_p is not None else s.top_p,
            presence_penalty=s.presence_penalty,
            frequency_penalty=s.frequency_penalty,
            seed=s.seed,
        )
        return ChatRequest(
            model=model,
            messages=prompt.messages,
            max_tokens=chat.max_reply_tokens or s.max_reply_tokens,
            sampling=sampling,
            user=self.user_hash(user_id),
        )

    async def _reply(
        self,
        incoming: Incoming,
        stored: Stored,
        prompt: Prompt,
        model: str,
        counter: TokenCounter,
        sink: ReplySink,
    ) -> Outcome:
        async with self._sessions.begin() as session:
            pending = await store.add_message(
                session,
                conversation_id=stored.conversation_id,
                chat_id=incoming.chat.id,
                role=Role.ASSISTANT,
                content="",
                token_count=0,
                status=Status.PENDING,
                model=model,
                reply_to_id=stored.message_id,
            )
        reply = _Reply(pending.id, incoming, prompt, model, counter)
        request = self._request(stored, prompt, model, incoming.user.id)
        error: LLMError | None = None
        await sink.begin()
        try:
            async for event in self._client.stream(request):
                if event.text:
                    reply.first_token = reply.first_token or time.monotonic()
                    reply.text += event.text
                    sink.push(reply.text)
                reply.usage = event.usage or reply.usage
                reply.finish = event.finish_reason or reply.finish
        except LLMError as exc:
            error = exc
            logger.warning("model stream failed in chat %s: %s", incoming.chat.id, exc)
        except asyncio.CancelledError:
            await asyncio.shield(self._record(reply, Status.INTERRUPTED, []))
            raise
        if not reply.text.strip():
            await sink.say(error.user_message if error else EMPTY_REPLY)
            await self._record(reply, Status.FAILED, [])
            return Outcome.FAILED
        shown = reply.text
        if error is not None:
            shown += "\n\n" + INTERRUPTED_NOTICE.format(reason=error.user_message)
        elif reply.finish == "length":
            shown += "\n\n" + CUT_BY_LIMIT_NOTICE
        ids = await sink.finish(shown)
        await self._record(reply, Status.INTERRUPTED if error else Status.COMPLETE, ids)
        return Outcome.INTERRUPTED if error else Outcome.ANSWERED

    async def _record(self, reply: _Reply, status: Status, telegram_ids: list[int]) -> None:
        """Store the assistant message's final state and its usage, in one transaction."""
        counter = reply.counter
        usage = reply.usage or Usage(reply.prompt.tokens, counter.count_text(reply.text))
        now = time.monotonic()
        async with self._sessions.begin() as session:
            await store.finish_message(
                session,
                reply.message_id,
                content=reply.text,
                token_count=counter.count_message(Role.ASSISTANT, reply.text),
                status=status,
                telegram_message_id=telegram_ids[0] if telegram_ids else None,
            )
            await store.add_usage(
                session,
                message_id=reply.message_id,
                chat_id=reply.incoming.chat.id,
                user_id=reply.incoming.user.id,
                model=reply.model,
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                reported=reply.usage is not None,
                latency_ms=round((now - reply.started) * 1000),
                first_token_ms=(
                    round((reply.first_token - reply.started) * 1000) if reply.first_token else None
                ),
            )

    async def _set_status(self, message_id: int, status: Status) -> None:
        async with self._sessions.begin() as session:
            await store.finish_message(session, message_id, status=status)


@dataclass(slots=True)
class _Reply:
    """The assistant reply being streamed."""

    message_id: int
    incoming: Incoming
    prompt: Prompt
    model: str
    counter: TokenCounter
    text: str = ""
    usage: Usage | None = None
    finish: str | None = None
    started: float = field(default_factory=time.monotonic)
    first_token: float | None = None
