"""Property tests of the Markdown → Telegram renderer: whatever the model writes, every part it
produces is a message Telegram accepts, and no content is lost."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bot.telegram.render import FENCE, Part, render_markdown, render_plain
from bot.telegram.split import TELEGRAM_TEXT_LIMIT, utf16_len
from emulators.bot_api_text import ENTITY_TYPES, validate_entities

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SAFE_URL = re.compile(r"^(https?|tg)://", re.IGNORECASE)
CODE_TYPES = frozenset({"pre", "code"})

EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "🇺🇦", "❤️", "𝒜", "𐍈", "🀄", "🧪"]
INVISIBLE = ["\u200d", "\u200c", "\u200b", "\u200e", "\u200f", "\u202b", "\u202c", "\u2066"]
WORDS = ["word", "Привет", "שלום", "مرحبا", "日本語", "naïve", "x", "42", "e=mc²"]
MARKUP = [
    "**",
    "*",
    "_",
    "__",
    "~~",
    "`",
    "``",
    "```",
    "```python\n",
    "```\n",
    "\n```\n",
    "~~~\n",
    "````\n",
    "[x](https://example.com)",
    "[x](http://example.com/a_b*c)",
    "[x](javascript:alert(1))",
    "[x](tg://user?id=1)",
    "[x](mailto:a@b.c)",
    "[",
    "](",
    ")",
    "<b>",
    "</b>",
    "<i>x</i>",
    "<script>",
    "&amp;",
    "&lt;",
    "&",
    "<",
    ">",
    "| a | b |\n|---|---|\n| 1 | 2 |\n",
    "|",
    "- ",
    "* ",
    "1. ",
    "> ",
    ">> ",
    "# ",
    "### ",
    "---\n",
    "***\n",
    "\\",
    "\\*",
    "||",
    "$x$",
    "$$\n",
    "![img](https://example.com/i.png)",
    "<https://example.com>",
    "https://example.com/x_y",
    "    indented code\n",
    "\t",
]
SPACE = [" ", "  ", "\n", "\n\n", "\r\n", "\r", "\u00a0", "\u3000"]

atom = st.one_of(
    st.sampled_from(MARKUP),
    st.sampled_from(EMOJI),
    st.sampled_from(INVISIBLE),
    st.sampled_from(WORDS),
    st.sampled_from(SPACE),
    st.text(max_size=12),
)
long_atom = st.one_of(
    st.integers(1, 5000).map(lambda n: "y" * n),  # one very long line
    st.integers(1, 2500).map(lambda n: "😀" * n),  # astral characters only
    st.integers(1, 1200).map(lambda n: "lorem ipsum " * n),
    st.integers(1, 400).map(lambda n: "```js\n" + "let a = 1; // **x**\n" * n),
    st.integers(1, 600).map(lambda n: "- item *one* `two`\n" * n),
    st.integers(1, 300).map(lambda n: "| col | **b** |\n|---|---|\n" + "| 1 | 😀 |\n" * n),
)
MAX_INPUT = 12_000
# Mostly short atoms; a few long ones reach the 4,096-unit message limit and beyond.
markdownish = st.lists(st.one_of(*[atom] * 15, long_atom), max_size=60).map(
    lambda atoms: "".join(atoms)[:MAX_INPUT]
)


def code_point_boundaries(text: str) -> set[int]:
    """UTF-16 offsets that fall between code points (never inside a surrogate pair)."""
    offsets, units = {0}, 0
    for ch in text:
        units += 2 if ord(ch) > 0xFFFF else 1
        offsets.add(units)
    return offsets


def assert_valid(parts: list[Part]) -> None:
    """Every part is a message Telegram accepts, with entities Telegram accepts."""
    for part in parts:
        text = part.text
        assert text and text.strip(), f"empty or whitespace-only part: {text!r}"
        total = utf16_len(text)
        assert total <= TELEGRAM_TEXT_LIMIT
        boundaries = code_point_boundaries(text)
        code_spans: list[tuple[int, int]] = []
        for kind, offset, length, url, language in part.entities:
            assert kind in ENTITY_TYPES, kind
            assert offset >= 0 and length > 0, (kind, offset, length)
            assert offset + length <= total, (kind, offset, length, total)
            assert offset in boundaries and offset + length in boundaries, "splits a pair"
            if kind == "text_link":
                assert url and SAFE_URL.match(url), url
            if kind in CODE_TYPES:
                code_spans.append((offset, offset + length))
            if language is not None:
                assert kind == "pre" and language.strip() == language != "", language
        code_spans.sort()
        for (_, end), (start, _) in itertools.pairwise(code_spans):
            assert end <= start, f"overlapping pre/code entities: {code_spans}"
        # The emulator applies Telegram's own entity rules; it must agree.
        as_json: list[dict[str, Any]] = [e.to_dict() for e in part.telegram_entities()]
        validate_entities(text, as_json)


def visible(text: str) -> str:
    """The non-whitespace characters of `text`, in order."""
    return "".join(ch for ch in text if not ch.isspace())


def shown(parts: list[Part]) -> str:
    return "".join(part.text for part in parts)


# ----------------------------------------------------------------------------- validity


@FUZZ
@given(markdownish)
@example("")
@example("   \n\t ")
@example("```")
@example("~~~\n")
@example("**" + "b" * 5000 + "**")
@example("😀" * 2049 + "**x**")
@example("x" * 4095 + "😀" + "**y**")
@example("```\n" + "😀" * 3000)
def test_every_final_rendering_is_a_valid_telegram_message(markdown: str) -> None:
    assert_valid(render_markdown(markdown, final=True))


@FUZZ
@given(markdownish)
@example("```python\nprint(1)\n")
@example("~~~\ncode\n")
@example("````\n```\n")
def test_every_mid_stream_rendering_is_a_valid_telegram_message(markdown: str) -> None:
    assert_valid(render_markdown(markdown, final=False))


@FUZZ
@given(markdownish)
def test_plain_rendering_is_valid_and_loses_nothing_visible(text: str) -> None:
    parts = render_plain(text)
    assert_valid(parts)
    assert all(part.entities == () for part in parts)
    assert visible(shown(parts)) == visible(text)


@FEW
@given(st.text(min_size=0, max_size=12_000))
def test_arbitrary_unicode_never_raises_and_renders_validly(text: str) -> None:
    assert_valid(render_markdown(text, final=True))
    assert_valid(render_markdown(text, final=False))
    assert_valid(render_plain(text))


def test_non_empty_input_always_shows_something() -> None:
    for text in ["*", "_", "**", "`", "```", "~~~\n", "<b>", "&amp;", "[x](javascript:1)", "|"]:
        assert render_markdown(text), text


# ----------------------------------------------------------------------------- content


PROSE_CHARS = st.one_of(
    st.sampled_from("abcXYZ0123456789,;:!?'\"&<@%^€£§°" + "ыйшאבגعربي日本"),
    st.sampled_from(EMOJI),
    st.sampled_from(INVISIBLE),
    st.sampled_from([" ", " ", " ", "\n", "\n\n", "\r\n"]),
)
prose = st.lists(PROSE_CHARS, min_size=1, max_size=400).map("".join)
long_prose = st.tuples(prose, st.integers(1, 9)).map(lambda p: (p[0] + "\n") * (p[1] * 4))


@FUZZ
@given(st.one_of(prose, long_prose))
@example("Use the <b> tag & the &amp; entity.")
@example("a <script>alert(1)</script> b")
@example("\u200fשלום\u200e abc\u200d😀")
@example("👨‍👩‍👧‍👦 " * 2000)
def test_prose_without_markdown_syntax_keeps_every_visible_character(text: str) -> None:
    for final in (True, False):
        parts = render_markdown(text, final=final)
        assert_valid(parts)
        assert visible(shown(parts)) == visible(text)


CODE_LINE = st.lists(
    st.one_of(
        st.sampled_from(["**", "*", "_", "`", "<b>", "&amp;", "[x](javascript:1)", "# ", "> "]),
        st.sampled_from(EMOJI),
        st.sampled_from(["x = 1", "if a < b:", "\t", "    ", "print('hi')", "|a|b|"]),
    ),
    max_size=10,
).map("".join)
code_body = (
    st.lists(CODE_LINE, min_size=1, max_size=40)
    .map("\n".join)
    .filter(lambda body: body.strip() != "")
    .filter(lambda body: not any(FENCE.match(line) for line in body.split("\n")))
)


@FUZZ
@given(
    code_body,
    st.sampled_from(["", "python", "js", "c++"]),
    st.sampled_from(["", "Intro text.\n\n", "**Bold** intro:\n"]),
    st.sampled_from(["", "\n\nAfter.", "\nTrailing *italic*."]),
)
@example("x = 1", "python", "", "")
@example("a **not bold** <b> &amp; [x](javascript:1)", "", "See:\n", "")
def test_text_inside_a_code_fence_survives_verbatim(
    body: str, language: str, before: str, after: str
) -> None:
    markdown = f"{before}```{language}\n{body}\n```{after}"
    parts = render_markdown(markdown, final=True)
    assert_valid(parts)
    [part] = parts
    assert body.strip() in part.text
    start = utf16_len(part.text[: part.text.index(body.strip())])
    end = start + utf16_len(body.strip())
    pres = [(o, o + n, lang) for kind, o, n, _, lang in part.entities if kind == "pre"]
    assert any(o <= start and end <= e for o, e, _ in pres), "the code is inside a pre entity"
    if language:
        assert any(lang == language for *_, lang in pres)


@FEW
@given(st.integers(150, 500))
def test_a_code_block_longer_than_a_message_keeps_every_line(lines: int) -> None:
    body = "\n".join(f"line {i}: a < b && **c** 😀" for i in range(lines))
    parts = render_markdown(f"```sql\n{body}\n```", final=True)
    assert_valid(parts)
    text = "\n".join(part.text for part in parts)
    for i in range(lines):
        assert f"line {i}: a < b && **c** 😀" in text


# ----------------------------------------------------------------------------- mid-stream


DOCUMENTS = [
    "Here is **bold with *italic inside*** and `inline code`.\n\n```python\ndef add(a, b):\n"
    "    return a < b\n```\n\nUse the <b> tag, see [the docs](https://example.com) — not "
    "[this](javascript:alert(1)).",
    "| name | emoji |\n|------|-------|\n| smile | 😀 |\n| family | 👨‍👩‍👧‍👦 |\n\n"
    "> quoted *text* with `code`\n> and more\n\n- one\n- **two**\n  - nested _three_\n"
    "1. first\n2. second [tg](tg://resolve?domain=x)\n",
    "\u200fשלום **עולם**\u200e\r\n~~~\nraw ~~~ block **not bold**\n~~~\r\n"
    "````md\n```\ninner fence\n```\n````\nDone & dusted &amp; <i>ok</i> $x^2$ ||spoiler||",
    "😀" * 30 + "**" + "𝒜" * 20 + "**" + "`" + "🇺🇦" * 10 + "`\n```\n" + "👍🏽" * 40,
]


@pytest.mark.parametrize("document", DOCUMENTS, ids=["mixed", "table-quote-list", "rtl", "emoji"])
def test_every_prefix_of_a_streamed_document_renders_validly(document: str) -> None:
    for end in range(len(document) + 1):
        prefix = document[:end]
        parts = render_markdown(prefix, final=False)
        assert_valid(parts)
        if prefix.strip():
            assert parts, f"nothing shown for {prefix!r}"
    assert_valid(render_markdown(document, final=True))


def test_a_long_document_streamed_in_chunks_renders_validly_at_every_step() -> None:
    document = "\n\n".join(DOCUMENTS) * 12
    assert len(document) > 8000
    for end in range(0, len(document) + 1, 97):
        assert_valid(render_markdown(document[:end], final=False))


@pytest.mark.parametrize("opening", ["~~~", "````", "~~~python"])
def test_an_open_non_backtick_fence_mid_stream_shows_no_fence_marker(opening: str) -> None:
    [part] = render_markdown(f"{opening}\nprint(1)\n", final=False)
    assert part.text == "print(1)"


def test_dollar_signs_in_prose_are_not_eaten_as_math() -> None:
    [part] = render_markdown("Run echo $HOME/$USER to see it.")
    assert part.text == "Run echo $HOME/$USER to see it."
