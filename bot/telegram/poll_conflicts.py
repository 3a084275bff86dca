"""Telegram's own signal of a second poller: getUpdates answered 409 Conflict.

A newer getUpdates cuts the older one short with "Conflict: terminated by other getUpdates
request", so when a second instance starts (say on another database, where the poller lease
cannot see it) the established one is cut first; it polls again a second later and cuts the
newcomer. Hence the rule: in its first `START_WINDOW_SECONDS` of polling an instance stops at
its first Conflict (it is the newcomer); after that it stops at a second Conflict within
`REPEAT_WINDOW_SECONDS` (one alone may be a stray manual getUpdates). "can't use getUpdates
method while webhook is active" stops it at once: the bot has been switched to a webhook.

Once stopping, the bot must not call getUpdates again, since each call would cut the other
instance's long poll and make it stop too; `PollingRequest` answers locally from then on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from telegram.error import Conflict
from telegram.request import HTTPXRequest

START_WINDOW_SECONDS = 5.0
REPEAT_WINDOW_SECONDS = 60.0
NO_UPDATES = b'{"ok":true,"result":[]}'


class PollConflicts:
    """Decides which Conflict answers mean that this instance must stop polling."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._started: float | None = None
        self._last: float | None = None

    def started(self) -> None:
        """Polling begins now."""
        self._started = self._clock()

    def must_stop(self, error: Conflict) -> bool:
        now = self._clock()
        if "webhook" in error.message:
            return True
        newcomer = self._started is None or now - self._started < START_WINDOW_SECONDS
        repeated = self._last is not None and now - self._last < REPEAT_WINDOW_SECONDS
        self._last = now
        return newcomer or repeated


class PollingRequest(HTTPXRequest):
    """The getUpdates connection; after `close()` it answers "no updates" without sending.

    PTB's `Updater.stop` makes one last getUpdates to confirm what was fetched; when the bot
    stops for another poller, that call must not reach Telegram.
    """

    closed = False

    def close(self) -> None:
        self.closed = True

    async def do_request(
        self, url: str, method: str, *args: Any, **kwargs: Any
    ) -> tuple[int, bytes]:
        if self.closed:
            return 200, NO_UPDATES
        return await super().do_request(url, method, *args, **kwargs)
