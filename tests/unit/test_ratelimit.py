"""ChatRateLimiter: per-chat pacing, and a 429 that delays only the chat it hit."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from telegram.error import RetryAfter

from bot.runtime.ratelimit import ChatRateLimiter, RateLimitArgs


class Recorder:
    """A Bot API stand-in: records when each call ran; can answer 429 a number of times."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object, float]] = []
        self.refuse: dict[object, int] = {}

    async def call(self, endpoint: str, chat_id: object) -> bool:
        self.calls.append((endpoint, chat_id, time.monotonic()))
        if self.refuse.get(chat_id, 0) > 0:
            self.refuse[chat_id] -= 1
            raise RetryAfter(1)
        return True


async def send(
    limiter: ChatRateLimiter,
    recorder: Recorder,
    chat_id: object,
    endpoint: str = "sendMessage",
    args: RateLimitArgs | None = None,
) -> Any:
    return await limiter.process_request(
        recorder.call, (endpoint, chat_id), {}, endpoint, {"chat_id": chat_id}, args
    )


def times(recorder: Recorder, chat_id: object) -> list[float]:
    return [at for _, chat, at in recorder.calls if chat == chat_id]


async def test_a_private_chat_gets_its_burst_then_one_call_per_interval() -> None:
    limiter, recorder = ChatRateLimiter(private_burst=2, private_rate=10.0), Recorder()
    start = time.monotonic()
    await asyncio.gather(*(send(limiter, recorder, 5) for _ in range(5)))
    at = [t - start for t in times(recorder, 5)]
    assert len(at) == 5
    assert at[1] < 0.05, "the burst goes at once"
    # Three more at 10/s: the last no sooner than 0.3 s after the start.
    assert at[-1] >= 0.28
    assert all(b - a >= 0.09 for a, b in itertools.pairwise(at[1:]))


async def test_groups_are_paced_more_slowly_than_private_chats() -> None:
    limiter = ChatRateLimiter(private_burst=1, private_rate=20.0, group_burst=1, group_rate=5.0)
    recorder = Recorder()
    await asyncio.gather(*(send(limiter, recorder, chat) for chat in (7, 7, -100, -100)))
    private, group = times(recorder, 7), times(recorder, -100)
    assert group[1] - group[0] >= 0.18 > private[1] - private[0]


async def test_a_429_delays_only_its_chat_and_the_call_is_retried() -> None:
    limiter, recorder = ChatRateLimiter(private_burst=5), Recorder()
    recorder.refuse[1] = 1
    slow = asyncio.create_task(send(limiter, recorder, 1))
    await asyncio.sleep(0.05)
    start = time.monotonic()
    assert await send(limiter, recorder, 2) is True
    assert time.monotonic() - start < 0.5, "another chat is not held up"
    assert await slow is True
    first, retried = times(recorder, 1)
    assert retried - first >= 0.95, "the retry waited retry_after"


async def test_fail_fast_callers_get_the_429_instead_of_waiting() -> None:
    limiter, recorder = ChatRateLimiter(), Recorder()
    recorder.refuse[3] = 1
    with pytest.raises(RetryAfter):
        await send(limiter, recorder, 3, args={"max_retries": 0})
    assert len(times(recorder, 3)) == 1


async def test_calls_without_a_flood_limit_are_never_delayed() -> None:
    limiter, recorder = ChatRateLimiter(private_burst=1, private_rate=0.1), Recorder()
    start = time.monotonic()
    for _ in range(5):
        await send(limiter, recorder, 9, endpoint="sendChatAction")
    assert time.monotonic() - start < 0.5
