"""Where a streamed reply is shown (a Telegram message, a terminal), and what it is told.

The turn sends the sink typed values — the reply so far, the final reply with the notice of
why it ended early, a notice instead of a reply — and the sink puts them into words. A new
capability adds an event type to `ReplyEvent`, not a method to every sink.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from bot.notices import Notice
from bot.parts import ToolCallPart
from bot.tools.loop import ToolStatus
from bot.tools.types import Attachment


@dataclass(frozen=True, slots=True)
class Progress:
    """The reply so far (and the thinking, when shown)."""

    text: str
    reasoning: str = ""


@dataclass(frozen=True, slots=True)
class ToolActivity:
    """The tool calls of this reply so far, one status each, in order (the live view shows a
    line per call until the answer's text replaces them); `details` asks for the arguments
    and a result excerpt too (SHOW_REASONING)."""

    calls: tuple[ToolStatus, ...]
    details: bool = False


ReplyEvent = Progress | ToolActivity


@dataclass(frozen=True, slots=True)
class Final:
    """The complete reply: its text, the thinking when shown, why it ended early, and what
    its tools made to be sent along (generated images)."""

    text: str
    reasoning: str = ""
    notice: Notice | None = None
    attachments: tuple[Attachment, ...] = ()


class ReplySink(Protocol):
    async def begin(self) -> None:
        """The model is being asked (show a typing indicator)."""

    def show(self, event: ReplyEvent) -> None:
        """Something new to show while the reply streams; must not block the stream."""

    async def finish(self, final: Final) -> list[int]:
        """Show the complete reply; return the ids of the messages that hold it."""

    async def say(self, notice: Notice) -> None:
        """Answer with a notice instead of a reply."""


@runtime_checkable
class ShowsMessages(Protocol):
    """A sink that shows a reply in numbered messages (Telegram): the turn stores their ids as
    they appear and keeps the reply within its message bound."""

    def watch(self, on_message: Callable[[Sequence[int]], Awaitable[None]]) -> None:
        """Call `on_message` with the message ids whenever a new message of the reply exists."""

    def messages_for(self, text: str, notice: Notice | None = None) -> int:
        """How many messages `text` (and the notice after it) takes once shown in full."""


@runtime_checkable
class Confirms(Protocol):
    """A sink that can ask the user whether a tool may run (Telegram: inline buttons)."""

    async def confirm(self, call: ToolCallPart, title: str) -> bool:
        """Ask about `call` (of the tool described by `title`); True when the user agrees.
        Waits a bounded time: no answer is a no."""
