"""ConsoleSink prints a streamed reply once: only what each push adds, then the ending."""

from __future__ import annotations

import io

from bot.console import ConsoleSink, message_ids


async def test_each_push_prints_only_the_new_text_and_finish_ends_the_line() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    await sink.begin()
    for so_far in ("Hel", "Hello", "Hello, world"):
        sink.push(so_far)
    assert await sink.finish("Hello, world\n\n[Stopped.]") == []
    await sink.say("A notice.")
    assert out.getvalue() == "Hello, world\n\n[Stopped.]\nA notice.\n"


async def test_a_text_that_does_not_continue_the_shown_one_starts_a_new_line() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    await sink.begin()
    sink.push("draft")
    await sink.finish("final")
    await sink.begin()  # the next reply starts from nothing shown
    sink.push("next")
    assert out.getvalue() == "draft\nfinal\nnext"


def test_console_message_ids_are_negative_and_distinct() -> None:
    ids = message_ids()
    first, second = next(ids), next(ids)
    assert first < 0 and second == first - 1
