"""Plain values the layers pass each other: who wrote, in which chat, and a stored message as
a prompt sees it. No dependencies, so the prompt fitter and the frontends need not import the
database for a dataclass."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from bot.parts import Part


class Role(enum.StrEnum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"  # the results of the assistant's tool calls


@dataclass(frozen=True, slots=True)
class UserInfo:
    id: int
    first_name: str = ""
    last_name: str | None = None
    username: str | None = None
    language_code: str | None = None


@dataclass(frozen=True, slots=True)
class ChatInfo:
    id: int
    type: str = "private"
    title: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryItem:
    id: int
    role: str
    content: str  # the plain text form
    tokens: int
    parts: tuple[Part, ...] = ()  # empty when the content is text alone
