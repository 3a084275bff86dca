"""Conversation operations: which conversation a message belongs to, storing the user's
message, /reset, what the bot remembers, the question to answer again, the chat's config.

Later: listing, switching and titling conversations. Nothing here talks to the model.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.chat_config import ChatConfig, resolve
from bot.config import Settings
from bot.db import admin_store, store
from bot.db.models import Chat, Message, Status
from bot.llm.tokens import TokenCounter
from bot.parts import Part, TextPart, text_form
from bot.prompt.recall import Recall, Remembered
from bot.values import ChatInfo, HistoryItem, Role, UserInfo


@dataclass(frozen=True, slots=True)
class Incoming:
    chat: ChatInfo
    user: UserInfo
    text: str  # the text form of the message
    telegram_message_id: int
    thread_id: int | None = None  # the forum topic, in supergroups with topics
    # The content when it is more than text (photos, transcripts, documents), each part's
    # `tokens` counted for the chat's model; empty for a text message.
    parts: tuple[Part, ...] = ()


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
    parts: tuple[Part, ...] = ()

    @property
    def item(self) -> HistoryItem:
        """The message as the newest item of a prompt."""
        return HistoryItem(self.message_id, Role.USER, self.text, self.tokens, self.parts)


def speaker(user: UserInfo) -> str:
    """How a group member is named in the shared history, so the model can tell people apart."""
    name = " ".join(p for p in (user.first_name, user.last_name) if p) or user.username or "User"
    return " ".join(name.split())[:64]


def memory_scope(chat: Chat, user_id: int) -> int | None:
    """The user a conversation belongs to: only in groups whose memory is per user."""
    return user_id if chat.type != "private" and chat.memory_mode == "user" else None


class Conversations:
    """The conversation side of a turn, on one database."""

    def __init__(
        self, settings: Settings, sessions: async_sessionmaker[AsyncSession], recall: Recall
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._recall = recall
        salt = settings.user_hash_salt or settings.telegram_bot_token
        self._salt = salt.get_secret_value().encode()

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
            row, conversation_id = await self.open(session, chat, user, thread_id)
            config = await self.chat_config(session, row)
        return await self._recall.remembered(conversation_id, config)

    async def open(
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

    async def config_for(self, chat: ChatInfo) -> ChatConfig:
        """The chat's configuration before a message is stored (to prepare its attachments
        for the chat's model)."""
        async with self._sessions.begin() as session:
            return await self.chat_config(session, await store.upsert_chat(session, chat))

    async def keep(self, incoming: Incoming) -> bool:
        """Store a message that is not answered now (a file without a question: the next
        message asks); False when it was stored before."""
        try:
            async with self._sessions.begin() as session:
                await self.store_user_message(session, incoming)
        except IntegrityError:
            return False
        return True

    async def last_question(
        self, chat: ChatInfo, user: UserInfo, thread_id: int | None = None
    ) -> Stored | None:
        """The newest user message of the chat's conversation, its replies taken out of memory."""
        async with self._sessions.begin() as session:
            chat_row, conversation_id = await self.open(session, chat, user, thread_id)
            message = await store.last_user_message(session, conversation_id)
            if message is None:
                return None
            await store.replace_replies(session, message.id)
            config = await self.chat_config(session, chat_row)
            return await self._stored(session, message, chat_row, config)

    async def question(self, message_id: int) -> Stored | None:
        """A stored user message, to be answered again (its reply was lost in a crash)."""
        async with self._sessions.begin() as session:
            message = await session.get(Message, message_id)
            chat = await session.get(Chat, message.chat_id) if message is not None else None
            if message is None or chat is None:
                return None
            config = await self.chat_config(session, chat)
            return await self._stored(session, message, chat, config)

    async def store_user_message(self, session: AsyncSession, incoming: Incoming) -> Stored:
        """Add the user's message to its conversation (the caller's transaction commits it)."""
        chat, conversation_id = await self.open(
            session, incoming.chat, incoming.user, incoming.thread_id
        )
        config = await self.chat_config(session, chat)
        text, parts = incoming.text, incoming.parts
        counter = TokenCounter(config.model)
        if chat.type != "private":  # who said it, as the first part in a group
            name = f"{speaker(incoming.user)}: "
            text = name + text
            if parts:
                parts = (TextPart(name.strip(), counter.count_text(name)), *parts)
        if parts:
            text = text_form(parts)
        text = store.without_nul(text)  # PostgreSQL cannot store it
        tokens = counter.count_message(Role.USER, text)
        if parts:  # the message's own overhead, then what each part costs as sent
            tokens = counter.count_message(Role.USER, "") + sum(p.tokens for p in parts)
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
            parts=parts,
        )
        return Stored(
            conversation_id,
            message_id,
            chat,
            config,
            text,
            tokens,
            incoming.telegram_message_id,
            parts,
        )

    async def _stored(
        self, session: AsyncSession, message: Message, chat: Chat, config: ChatConfig
    ) -> Stored:
        parts: tuple[Part, ...] = ()
        if message.has_parts:
            parts = tuple((await store.content_parts(session, [message.id])).get(message.id, ()))
        return Stored(
            message.conversation_id,
            message.id,
            chat,
            config,
            message.content,
            message.token_count,
            message.telegram_message_id,
            parts,
        )
