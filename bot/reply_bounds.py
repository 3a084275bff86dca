"""The bot's own bounds on one reply: characters, Telegram messages and seconds.

A model server may ignore `max_tokens` and stream for ever, or send one enormous delta; these
bounds stop the reply whatever the server does. The defaults derive from the reply's token
limit and are generous enough that an honest reply is never cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from bot.config import Settings

CHARS_PER_TOKEN = 8  # far above any tokenizer's average (about 4 for English)
MESSAGE_CHARS = 2_048  # a Telegram message holds at least half of 4096 before it is split
MESSAGES_SLACK = 2
SLOW_TOKENS_PER_SECOND = 5.0  # a slow but honest server
SECONDS_MARGIN = 60.0  # the wait for the first token, reasoning, retries
CLEAN_CUT_WINDOW = 200  # how far back a cut looks for a line break or a space


class Bound(Enum):
    """Which bound stopped a reply."""

    LENGTH = "length"
    MESSAGES = "messages"
    TIME = "time"


@dataclass(frozen=True, slots=True)
class ReplyBounds:
    chars: int
    messages: int
    seconds: float

    @classmethod
    def of(cls, settings: Settings, max_tokens: int) -> ReplyBounds:
        """The bounds in force for a reply of at most `max_tokens` tokens."""
        chars = settings.max_reply_chars or max_tokens * CHARS_PER_TOKEN
        messages = settings.max_reply_messages or chars // MESSAGE_CHARS + MESSAGES_SLACK
        seconds = settings.max_reply_seconds or SECONDS_MARGIN + max_tokens / SLOW_TOKENS_PER_SECOND
        return cls(chars, messages, seconds)


def cut(text: str, limit: int, keep: int = 0) -> str:
    """`text` cut to at most `limit` characters, at a line break or space when one is near.

    The first `keep` characters (already shown) always stay.
    """
    if len(text) <= limit:
        return text
    window = text[:limit]
    floor = max(keep, limit - CLEAN_CUT_WINDOW)
    for separator in ("\n\n", "\n", " "):
        at = window.rfind(separator)
        if at >= floor:
            kept = window[:at].rstrip()
            return kept if len(kept) >= keep else window[:keep]
    return window
