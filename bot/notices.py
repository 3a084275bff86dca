"""What the core tells the user, as codes with values: the frontends put it into words.

A `Notice` is a code (a `Code` here, a `MediaError` code, an error's `problem`) and the
values its sentence needs; `bot.wording` holds the sentences, so translations live in one
place and the core never builds a user-facing string.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

NoticeValue = str | int | float | None


class Code(enum.StrEnum):
    """Why a reply ended or was not given."""

    CUT_BY_LIMIT = "cut_by_limit"  # the model stopped at max tokens
    INTERRUPTED = "interrupted"  # values: reason (an error's problem code)
    STOPPED = "stopped"  # /stop after some text
    STOPPED_EARLY = "stopped_early"  # /stop before any text
    EMPTY_REPLY = "empty_reply"
    LENGTH_BOUND = "length_bound"
    MESSAGES_BOUND = "messages_bound"
    TIME_BOUND = "time_bound"
    RESTARTED = "restarted"  # the bot restarted while the reply streamed
    TOO_LONG = "too_long"  # values: tokens, limit
    TOO_FAST = "too_fast"  # values: limit (messages per minute)
    QUOTA_USED = "quota_used"  # values: limit (tokens per day)


@dataclass(frozen=True, slots=True)
class Notice:
    code: str
    values: Mapping[str, NoticeValue] = field(default_factory=dict)
