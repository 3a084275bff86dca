"""ConsoleSink prints a streamed reply once: only what each event adds, then the ending."""

from __future__ import annotations

import io

from bot.console import ConsoleSink, message_ids
from bot.notices import Code, Notice
from bot.reply_sink import Final, Progress
from bot.wording import render


async def test_each_event_prints_only_the_new_text_and_finish_ends_the_line() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    await sink.begin()
    for so_far in ("Hel", "Hello", "Hello, world"):
        sink.show(Progress(so_far))
    assert await sink.finish(Final("Hello, world", notice=Notice(Code.STOPPED))) == []
    await sink.say(Notice(Code.EMPTY_REPLY))
    assert out.getvalue() == f"Hello, world\n\n[Stopped.]\n{render(Code.EMPTY_REPLY)}\n"


async def test_a_text_that_does_not_continue_the_shown_one_starts_a_new_line() -> None:
    out = io.StringIO()
    sink = ConsoleSink(out)
    await sink.begin()
    sink.show(Progress("draft"))
    await sink.finish(Final("final"))
    await sink.begin()  # the next reply starts from nothing shown
    sink.show(Progress("next"))
    assert out.getvalue() == "draft\nfinal\nnext"


def test_console_message_ids_are_negative_and_distinct() -> None:
    ids = message_ids()
    first, second = next(ids), next(ids)
    assert first < 0 and second == first - 1
