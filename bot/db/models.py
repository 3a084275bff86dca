"""The schema: users, chats, conversations, messages and the usage ledger.

Telegram ids are the primary keys of users and chats. A chat has one open conversation
per memory scope (the whole chat, or one user in it); `/reset` closes it and opens the next.
Each message stores its token count once, at insert, so building a prompt never re-tokenizes.
A message's content is its plain text (`messages.content`); one that holds more than text
(images, transcripts, tool calls) also has its ordered parts in `message_content`.
"""

from __future__ import annotations

import enum
import json
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# BIGINT autoincrement is not an alias of ROWID in SQLite; INTEGER is.
BigId = BigInteger().with_variant(Integer(), "sqlite")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Status(enum.StrEnum):
    """Lifecycle of a stored message; only complete and interrupted ones enter prompts."""

    PENDING = "pending"  # assistant reply being generated
    COMPLETE = "complete"
    INTERRUPTED = "interrupted"  # partial text the user saw, kept
    FAILED = "failed"  # no text could be produced
    REJECTED = "rejected"  # user message the bot could not take (too long)
    REPLACED = "replaced"  # assistant reply superseded by /retry


IN_PROMPT = (Status.COMPLETE, Status.INTERRUPTED)


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    username: Mapped[str | None] = mapped_column(String(64))
    first_name: Mapped[str] = mapped_column(String(256), default="")
    last_name: Mapped[str | None] = mapped_column(String(256))
    language_code: Mapped[str | None] = mapped_column(String(16))
    is_blocked: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Allowed by an admin at run time (in addition to ALLOWED_USER_IDS).
    is_allowed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    first_seen: Mapped[datetime] = _now()
    last_seen: Mapped[datetime] = _now()


class Chat(Base):
    __tablename__ = "chats"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(16))
    title: Mapped[str | None] = mapped_column(String(256))
    system_prompt: Mapped[str | None] = mapped_column(Text)
    preset: Mapped[str | None] = mapped_column(String(64))
    model: Mapped[str | None] = mapped_column(String(128))
    profile: Mapped[str | None] = mapped_column(String(32))  # a MODEL_PROFILES name
    temperature: Mapped[float | None] = mapped_column(Float)
    top_p: Mapped[float | None] = mapped_column(Float)
    max_reply_tokens: Mapped[int | None] = mapped_column(Integer)
    presence_penalty: Mapped[float | None] = mapped_column(Float)
    frequency_penalty: Mapped[float | None] = mapped_column(Float)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    stop: Mapped[str | None] = mapped_column(Text)  # JSON list of stop sequences
    memory_mode: Mapped[str] = mapped_column(String(16), default="chat", server_default="chat")
    # Rolling summary of old turns: None follows SUMMARY_ENABLED.
    summary_enabled: Mapped[bool | None] = mapped_column(Boolean)
    is_allowed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    disabled_tools: Mapped[str | None] = mapped_column(Text)  # JSON list of tool names (/tools)
    created_at: Mapped[datetime] = _now()

    @property
    def tools_off(self) -> frozenset[str]:
        """The tools admins turned off here (none when never set)."""
        return frozenset(json.loads(self.disabled_tools)) if self.disabled_tools else frozenset()


class Conversation(Base):
    __tablename__ = "conversations"
    __table_args__ = (
        Index("ix_conversations_open_thread", "chat_id", "thread_id", "user_id", "closed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    chat_id: Mapped[int] = mapped_column(ForeignKey("chats.id", ondelete="CASCADE"))
    # Set only when memory is per user inside a group chat.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    # The forum topic (message_thread_id) in supergroups with topics; each is its own memory.
    thread_id: Mapped[int | None] = mapped_column(BigInteger)
    started_at: Mapped[datetime] = _now()
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Message(Base):
    __tablename__ = "messages"
    __table_args__ = (
        # A redelivered Telegram update carries the same (chat, message id): inserting it fails.
        UniqueConstraint("chat_id", "telegram_message_id", name="uq_messages_chat_telegram"),
        Index("ix_messages_conversation_tail", "conversation_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    chat_id: Mapped[int] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text)  # the plain text form, parts joined
    # True when the content is more than text: its parts are rows of message_content. A text
    # message has none (its one part is `content`), so reading it for a prompt costs no join.
    has_parts: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # The model's thinking (`<think>` blocks, reasoning deltas): kept apart, never in prompts.
    reasoning: Mapped[str | None] = mapped_column(Text)
    token_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    model: Mapped[str | None] = mapped_column(String(128))
    telegram_message_id: Mapped[int | None] = mapped_column(BigInteger)
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = _now()


class MessageDelivery(Base):
    """The Telegram messages that show one stored message (a long reply spans several)."""

    __tablename__ = "message_deliveries"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    telegram_message_id: Mapped[int] = mapped_column(BigInteger)


class MessageContent(Base):
    """One typed part of a message's content, in order (see `bot.llm.parts`).

    `text` is the part's text form (caption, transcript, extracted text, tool output); `data`
    its kind's fields (mime, size, Telegram file ids, tool call id, name, arguments, ...);
    `blob` the bytes sent to the model, or a derived form of them (a downscaled JPEG);
    `token_count` its cost as sent.
    """

    __tablename__ = "message_content"

    message_id: Mapped[int] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    kind: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text, default="", server_default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    token_count: Mapped[int] = mapped_column(Integer)


class Summary(Base):
    """A rolling summary of a conversation's oldest messages; the newest row is in force.

    It covers the conversation's messages up to `last_message_id`; newer ones are sent as they
    are. Every fold writes a new row, so earlier summaries stay for inspection.
    """

    __tablename__ = "summaries"
    __table_args__ = (Index("ix_summaries_conversation", "conversation_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    first_message_id: Mapped[int] = mapped_column(BigInteger)
    last_message_id: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[str] = mapped_column(Text)
    token_count: Mapped[int] = mapped_column(Integer)  # as a prompt message, overhead included
    model: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = _now()


class Prompt(Base):
    """A named system-prompt preset; every edit is a new version, deletion a tombstone."""

    __tablename__ = "prompts"
    __table_args__ = (UniqueConstraint("name", "version", name="uq_prompts_name_version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(BigInteger)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = _now()


class GlobalSetting(Base):
    """A run-time override of a configured default (system prompt, model, sampling)."""

    __tablename__ = "global_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)  # JSON
    updated_by: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime] = _now()


class Audit(Base):
    """Every admin action: who, what, old → new, when."""

    __tablename__ = "audit"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    actor_id: Mapped[int] = mapped_column(BigInteger, index=True)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(128))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class Usage(Base):
    __tablename__ = "usage"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    message_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), index=True
    )
    chat_id: Mapped[int] = mapped_column(BigInteger, index=True)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    model: Mapped[str] = mapped_column(String(128))
    # What the call was for: "reply", or "summary" (folding old turns into the summary).
    kind: Mapped[str] = mapped_column(String(16), default="reply", server_default="reply")
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    # False when the server sent no usage and the numbers are our own count.
    reported: Mapped[bool] = mapped_column(Boolean)
    latency_ms: Mapped[int] = mapped_column(Integer)
    first_token_ms: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class UpdateLog(Base):
    """Every Telegram update taken: de-duplication across replicas and per-chat order (updates
    of a chat are handled in `update_id` order). Done rows keep only ids, for two days."""

    __tablename__ = "update_log"
    __table_args__ = (Index("ix_update_log_chat_pending", "chat_id", "done", "update_id"),)

    update_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    chat_id: Mapped[int | None] = mapped_column(BigInteger)
    user_id: Mapped[int | None] = mapped_column(BigInteger, index=True)  # found by /forget
    # The update as replay needs it, while pending; emptied once done (the id is enough).
    payload: Mapped[str] = mapped_column(Text)
    done: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class PollerLease(Base):
    """Which process polls Telegram for a bot (one row per bot id): taken at start-up in
    polling mode, renewed by a heartbeat, deleted on a clean stop (see telegram/poller_guard)."""

    __tablename__ = "poller_lease"

    bot_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    # "host:pid:nonce" of the process; the nonce tells two runs with one pid apart.
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
