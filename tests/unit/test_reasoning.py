"""ThinkSplitter and reasoning deltas: the model's thinking never becomes the answer."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.llm.client import parse_chunk
from bot.llm.reasoning import ThinkSplitter, split_reasoning


def feed_all(*deltas: str, finish: bool = True) -> ThinkSplitter:
    splitter = ThinkSplitter()
    for delta in deltas:
        splitter.feed(delta)
    if finish:
        splitter.finish()
    return splitter


def test_a_leading_think_block_is_reasoning() -> None:
    assert split_reasoning("<think>plan</think>\n\nThe answer.") == ("The answer.", "plan")


def test_text_without_tags_is_all_answer() -> None:
    assert split_reasoning("Use a < b and c > d.") == ("Use a < b and c > d.", "")


def test_an_unclosed_block_mid_stream_is_hidden() -> None:
    splitter = feed_all("Hi. <think>still thin", "king about", finish=False)
    assert splitter.answer == "Hi. "
    assert splitter.reasoning == "still thinking about"


def test_tags_cut_across_deltas_are_never_shown() -> None:
    splitter = ThinkSplitter()
    shown = []
    for delta in ["<th", "ink>pl", "an</thi", "nk>Ans", "wer"]:
        splitter.feed(delta)
        shown.append(splitter.answer)
    assert all("<" not in s and "plan" not in s for s in shown)
    splitter.finish()
    assert (splitter.answer, splitter.reasoning) == ("Answer", "plan")


def test_a_held_back_partial_tag_is_text_when_the_stream_ends() -> None:
    splitter = feed_all("x <thi", finish=False)
    assert splitter.answer == "x "
    splitter.finish()
    assert splitter.answer == "x <thi"


def test_an_orphan_closing_tag_turns_what_came_before_into_reasoning() -> None:
    splitter = feed_all("thinking without an opening tag", "</think>", "Answer.")
    assert (splitter.answer, splitter.reasoning) == ("Answer.", "thinking without an opening tag")


def test_later_blocks_are_also_reasoning() -> None:
    assert split_reasoning("A <think>x</think>B <think>y</think>C") == ("A B C", "xy")


def test_reasoning_deltas_are_kept_apart() -> None:
    splitter = ThinkSplitter()
    splitter.add_reasoning("step one. ")
    splitter.add_reasoning("step two.")
    splitter.feed("Answer")
    splitter.finish()
    assert (splitter.answer, splitter.reasoning) == ("Answer", "step one. step two.")


@given(st.text(alphabet="ab<>/thinkTHINK ", max_size=60), st.integers(1, 7))
def test_any_chunking_gives_the_same_split(text: str, size: int) -> None:
    chunks = [text[i : i + size] for i in range(0, len(text), size)]
    splitter = feed_all(*chunks)
    assert (splitter.answer, splitter.reasoning) == split_reasoning(text)


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_deltas_are_parsed_apart_from_the_content(key: str) -> None:
    chunk = {"choices": [{"index": 0, "delta": {key: "hmm", "content": None}}]}
    event = parse_chunk(json.dumps(chunk))
    assert event is not None and event.text == "" and event.reasoning == "hmm"
