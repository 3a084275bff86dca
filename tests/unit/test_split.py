"""split_text / utf16_len: Telegram-sized parts, counted in UTF-16 code units."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from bot.telegram.split import TELEGRAM_TEXT_LIMIT, split_text, utf16_len

PROPERTY = settings(max_examples=150, deadline=None)

# Characters that stress the splitter: astral (2 UTF-16 units), separators, other whitespace,
# zero-width and bidi controls, combining marks.
SPECIAL = "abЯ中é\u0301🦜😀𝕏👨\u200d \n\n\t\r\u00a0\u3000\u200b\u200f\u202e\ufeff"
any_char = st.characters(codec="utf-8")  # every code point but the lone surrogates
texts = st.text(alphabet=st.sampled_from(SPECIAL) | any_char, max_size=100)
limits = st.integers(min_value=2, max_value=30)


def _single_separators(text: str) -> str:
    """Each whitespace run becomes one separator: a space, a line break or a paragraph break."""

    def separator(run: re.Match[str]) -> str:
        return {0: " ", 1: "\n"}.get(run[0].count("\n"), "\n\n")

    return re.sub(r"\s+", separator, text).lstrip()


# Words of visible characters separated by single separators: no whitespace run to cut inside.
prose = st.text(alphabet=st.sampled_from("aЯ中🦜𝕏\u200b-. \n"), max_size=150).map(
    _single_separators
)


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def non_whitespace(text: str) -> str:
    return "".join(ch for ch in text if not ch.isspace())


def assert_parts_cover(text: str, parts: list[str]) -> None:
    """The parts occur in `text` in order, separated only by whitespace."""
    pos = 0
    for part in parts:
        at = text.find(part, pos)
        assert at >= 0, (part, text[pos:])
        assert not non_whitespace(text[pos:at]), (part, text[pos:at])
        pos = at + len(part)
    assert not non_whitespace(text[pos:])


# --- utf16_len --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "units"),
    [
        ("", 0),
        ("abc", 3),
        ("Привет", 6),
        ("中文", 2),
        ("🦜", 2),
        ("𝕏y", 3),
        ("e\u0301", 2),
        ("👨\u200d👩\u200d👧", 8),
        ("\u200b\u200f", 2),
    ],
)
def test_utf16_len_counts_code_units_like_telegram(text: str, units: int) -> None:
    assert utf16_len(text) == units


@PROPERTY
@given(text=st.text(alphabet=any_char, max_size=200))
def test_utf16_len_equals_the_length_of_the_utf16_encoding(text: str) -> None:
    assert utf16_len(text) == utf16_units(text)


# --- properties of split_text -----------------------------------------------------------------


@PROPERTY
@given(text=texts, limit=limits)
def test_every_part_fits_the_limit_and_no_part_splits_a_surrogate_pair(
    text: str, limit: int
) -> None:
    for part in split_text(text, limit):
        encoded = part.encode("utf-16-le")  # raises on a lone surrogate
        assert len(encoded) // 2 <= limit
        assert encoded.decode("utf-16-le") == part
        assert part == "" or not 0xDC00 <= int.from_bytes(encoded[:2], "little") <= 0xDFFF


@PROPERTY
@given(text=texts, limit=limits)
def test_parts_keep_every_non_whitespace_character_in_order(text: str, limit: int) -> None:
    parts = split_text(text, limit)

    assert non_whitespace("".join(parts)) == non_whitespace(text)
    assert_parts_cover(text, parts)


@PROPERTY
@given(text=texts, limit=limits)
def test_a_text_within_the_limit_is_returned_unchanged_as_one_part(text: str, limit: int) -> None:
    if utf16_len(text) <= limit:
        assert split_text(text, limit) == [text]
    else:
        parts = split_text(text, limit)
        assert len(parts) >= 2 or non_whitespace(parts[0]) == non_whitespace(text)


@PROPERTY
@given(text=texts, limit=limits)
def test_parts_after_a_cut_do_not_start_with_a_newline_nor_end_with_whitespace(
    text: str, limit: int
) -> None:
    parts = split_text(text, limit)

    for part in parts[1:]:
        assert not part.startswith("\n")
    for part in parts[:-1]:
        assert part == part.rstrip()


# Dense separators make every kind of cut likely within a short text.
separator_heavy = st.text(alphabet=st.sampled_from("ab 🦜\n\n\u200b"), max_size=80)


@PROPERTY
@given(
    text=texts | separator_heavy,
    extension=texts | separator_heavy,
    limit=limits,
)
@example(text="abcde fghij", extension="klm", limit=10)
@example(text="abcdefghij\n\n", extension="\n\nx", limit=10)
@example(text="ab cdefghijkl", extension="mnopqrstuvwxyz", limit=10)
def test_growing_text_keeps_its_earlier_parts(text: str, extension: str, limit: int) -> None:
    before = split_text(text, limit)
    after = split_text(text + extension, limit)

    assert after[: len(before) - 1] == before[:-1]


@PROPERTY
@given(text=prose, limit=st.integers(min_value=4, max_value=30))
def test_prose_is_split_into_non_empty_parts(text: str, limit: int) -> None:
    parts = split_text(text, limit)

    assert parts
    if text:
        assert all(parts)


@PROPERTY
@given(text=texts, limit=limits)
@example(text=" " * 11 + "x", limit=10)
def test_every_part_is_non_empty_unless_the_input_is_empty(text: str, limit: int) -> None:
    parts = split_text(text, limit)

    assert parts
    if text:
        assert all(parts)


# --- explicit examples, limit 10 --------------------------------------------------------------


def test_empty_text_is_one_empty_part() -> None:
    assert split_text("", 10) == [""]


def test_a_paragraph_break_in_the_second_half_is_preferred_over_a_line_break() -> None:
    # window "abcde\n\nf\ng": paragraph break at 5, line break at 8, no space
    assert split_text("abcde\n\nf\ng hijk", 10) == ["abcde", "f\ng hijk"]


def test_a_paragraph_break_is_preferred_over_a_later_space() -> None:
    # window "abcde\n\nf g": paragraph break at 5, space at 8
    assert split_text("abcde\n\nf ghijk", 10) == ["abcde", "f ghijk"]


def test_a_line_break_is_preferred_over_a_space() -> None:
    # window "abcdef\ng h": line break at 6, space at 8
    assert split_text("abcdef\ng hijk", 10) == ["abcdef", "g hijk"]


def test_a_space_is_used_when_there_is_no_line_break_in_the_second_half() -> None:
    assert split_text("abcdef gh ijkl", 10) == ["abcdef gh", "ijkl"]


def test_separators_in_the_first_half_of_the_window_are_ignored() -> None:
    # window "ab\n\ncdefg ": the paragraph and line breaks are before index 5
    assert split_text("ab\n\ncdefg hijk", 10) == ["ab\n\ncdefg", "hijk"]


def test_without_a_separator_in_the_second_half_the_cut_is_hard() -> None:
    assert split_text("abcdefghijklmno", 10) == ["abcdefghij", "klmno"]
    assert split_text("ab cdefghijklmno", 10) == ["ab cdefghi", "jklmno"]


def test_astral_characters_count_as_two_units_and_are_never_halved() -> None:
    assert split_text("🦜" * 6, 10) == ["🦜" * 5, "🦜"]
    assert split_text("aaaaaaaaa🦜b", 10) == ["aaaaaaaaa", "🦜b"]


def test_newlines_after_a_cut_are_dropped() -> None:
    assert split_text("abcdefgh\n\n\n\nijk", 10) == ["abcdefgh", "ijk"]


def test_an_exactly_full_text_is_not_split() -> None:
    assert split_text("abcdefghij", 10) == ["abcdefghij"]
    assert split_text("🦜🦜🦜🦜🦜", 10) == ["🦜🦜🦜🦜🦜"]


def test_default_limit_is_telegrams_4096_utf16_units() -> None:
    assert TELEGRAM_TEXT_LIMIT == 4096
    assert [len(p) for p in split_text("x" * 4097)] == [4096, 1]
    assert split_text("🦜" * 2049) == ["🦜" * 2048, "🦜"]
