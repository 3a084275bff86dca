"""Which 409 Conflict answers to getUpdates stop the bot, and the lease holder's identity."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time

import pytest
from telegram.error import Conflict

from bot.telegram.poll_conflicts import (
    REPEAT_WINDOW_SECONDS,
    START_WINDOW_SECONDS,
    PollConflicts,
)
from bot.telegram.poller_guard import Holder, bot_id, describe, process_alive, provably_dead

CUT = Conflict("Conflict: terminated by other getUpdates request; make sure that only one bot")
WEBHOOK = Conflict("Conflict: can't use getUpdates method while webhook is active; use ...")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def established() -> tuple[PollConflicts, Clock]:
    clock = Clock()
    conflicts = PollConflicts(clock)
    conflicts.started()
    clock.now += START_WINDOW_SECONDS + 1
    return conflicts, clock


def test_a_newcomer_stops_at_its_first_conflict() -> None:
    clock = Clock()
    conflicts = PollConflicts(clock)
    conflicts.started()
    clock.now += START_WINDOW_SECONDS / 2
    assert conflicts.must_stop(CUT)


def test_an_established_poller_rides_out_one_conflict_but_not_two_in_a_row() -> None:
    conflicts, clock = established()
    assert not conflicts.must_stop(CUT)
    clock.now += 2
    assert conflicts.must_stop(CUT)


def test_conflicts_far_apart_are_each_ridden_out() -> None:
    conflicts, clock = established()
    for _ in range(3):
        assert not conflicts.must_stop(CUT)
        clock.now += REPEAT_WINDOW_SECONDS + 1


def test_an_active_webhook_stops_even_an_established_poller() -> None:
    conflicts, _ = established()
    assert conflicts.must_stop(WEBHOOK)


def test_holder_round_trips_and_describes_itself() -> None:
    me = Holder.mine()
    assert Holder.parse(str(me)) == me
    assert describe(str(me)) == f"pid {me.pid} on {me.host}"
    assert Holder.parse("garbage") is None
    assert describe("garbage") == "'garbage'"


def test_bot_id_is_the_public_part_of_the_token() -> None:
    assert bot_id("123456:ABC-secret") == 123456


async def test_a_dead_pid_on_this_host_is_provably_dead_and_a_live_one_is_not() -> None:
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", "pass")
    await child.wait()
    host = socket.gethostname()
    assert not process_alive(child.pid)
    assert provably_dead(Holder(host, child.pid, "x"))
    assert not provably_dead(Holder(host, os.getppid(), "x")), "alive: wait it out"
    assert not provably_dead(Holder("elsewhere", child.pid, "x")), "another host: unknowable"
    assert provably_dead(Holder(host, os.getpid(), "not-one-of-ours")), "a past run, same pid"


@pytest.mark.skipif(not os.path.exists("/proc"), reason="zombies are read from /proc")
def test_a_killed_but_unreaped_process_counts_as_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        child.kill()
        deadline = time.monotonic() + 10
        while process_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # the kernel makes it a zombie within moments
        assert not process_alive(child.pid)
        assert os.path.exists(f"/proc/{child.pid}"), "not reaped yet: a zombie"
    finally:
        child.wait()
