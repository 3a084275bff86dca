"""Pieces of the rolling summary: the cap, chunking of the backlog, transcript lines."""

from __future__ import annotations

from bot.config import Settings
from bot.prompt.summary import _line, _take_chunk, summary_cap
from bot.values import HistoryItem


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, telegram_bot_token="1:x", **values)  # type: ignore[call-arg]


def items(*tokens: int) -> list[HistoryItem]:
    return [HistoryItem(i, "user", f"m{i}", t) for i, t in enumerate(tokens, start=1)]


def test_the_cap_is_the_setting_or_a_quarter_of_the_budget() -> None:
    assert summary_cap(settings(summary_max_tokens=512), 15_000) == 512
    assert summary_cap(settings(summary_max_tokens=512), 1_000) == 250


def test_chunks_take_the_oldest_messages_that_fit() -> None:
    backlog = items(40, 40, 40, 40)
    assert [i.id for i in _take_chunk(backlog, 100)] == [1, 2]
    assert [i.id for i in _take_chunk(backlog, 100)] == [3, 4]
    assert backlog == []


def test_a_message_larger_than_a_chunk_still_goes_alone() -> None:
    backlog = items(500, 10)
    assert [i.id for i in _take_chunk(backlog, 100)] == [1]
    assert [i.id for i in backlog] == [2]


def test_transcript_lines_name_the_speaker_and_cut_huge_messages() -> None:
    assert _line(HistoryItem(1, "assistant", "Hi", 5), 100) == "Assistant: Hi"
    long = _line(HistoryItem(2, "user", "x" * 5000, 5000), 100)
    assert long.startswith("User: xxx") and long.endswith(" […]") and len(long) < 900
