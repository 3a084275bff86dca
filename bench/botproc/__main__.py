"""The bot exactly as ``python -m bot run`` serves it, started by the benchmark in its own
process so that its CPU time and peak memory are its own, not the emulators'.

``--open-limits`` lifts the bot's own flood control (used only with the Bot API emulator's
flood limits off, to show the bot's overhead without any Telegram-imposed pacing).

A package's ``__main__``, like ``python -m bot``'s own: the parsing workers (forkserver) skip
importing it, as they do in production, instead of loading the whole bot a second time.
"""

from __future__ import annotations

import sys

import bot.telegram.app as bot_app
from bot.__main__ import main
from bot.runtime.ratelimit import ChatRateLimiter

UNLIMITED = 1e9  # calls per second


def open_limiter() -> ChatRateLimiter:
    """A limiter that never waits."""
    return ChatRateLimiter(
        overall_rate=UNLIMITED,
        private_burst=UNLIMITED,
        private_rate=UNLIMITED,
        group_burst=UNLIMITED,
        group_rate=UNLIMITED,
    )


if __name__ == "__main__":
    if "--open-limits" in sys.argv[1:]:
        setattr(bot_app, "ChatRateLimiter", open_limiter)  # noqa: B010 (mypy: not exported)
    sys.exit(main(["run"]))
