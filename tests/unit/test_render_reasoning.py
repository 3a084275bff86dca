"""with_reasoning: the model's thinking shown collapsed above the answer."""

from __future__ import annotations

from bot.telegram.render import REASONING_SHOWN, Part, render_markdown, with_reasoning
from bot.telegram.split import TELEGRAM_TEXT_LIMIT, utf16_len


def test_no_reasoning_leaves_the_parts_alone() -> None:
    parts = render_markdown("**Hi**")
    assert with_reasoning(parts, "  ") == parts


def test_reasoning_joins_the_first_part_as_an_expandable_blockquote() -> None:
    [part] = with_reasoning(render_markdown("**Hi** there"), "I think 😀.")
    assert part.text == "I think 😀.\n\nHi there"
    quote_length = utf16_len("I think 😀.")
    assert part.entities[0] == ("expandable_blockquote", 0, quote_length, None, None)
    assert part.entities[1] == ("bold", quote_length + 2, 2, None, None)


def test_reasoning_gets_its_own_message_when_the_first_part_is_full() -> None:
    full = Part("x" * (TELEGRAM_TEXT_LIMIT - 5))
    parts = with_reasoning([full], "thinking")
    assert parts[1] == full
    assert parts[0].text == "thinking"


def test_long_reasoning_is_cut() -> None:
    [quote, answer] = with_reasoning([Part("y" * 4000)], "z" * 10_000)
    assert len(quote.text) == REASONING_SHOWN and quote.text.endswith("…")
    assert answer.text == "y" * 4000


def test_reasoning_alone_is_shown_while_no_answer_came_yet() -> None:
    [quote] = with_reasoning([], "hmm")
    assert quote.entities == (("expandable_blockquote", 0, 3, None, None),)
