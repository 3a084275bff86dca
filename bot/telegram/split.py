"""Split text into Telegram-sized messages (4096 UTF-16 code units each)."""

from __future__ import annotations

TELEGRAM_TEXT_LIMIT = 4096


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def _prefix_within(text: str, limit: int) -> int:
    """The number of characters of `text` whose UTF-16 length is at most `limit`."""
    units = 0
    for index, ch in enumerate(text):
        units += 2 if ord(ch) > 0xFFFF else 1
        if units > limit:
            return index
    return len(text)


def split_text(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """Cut `text` into parts of at most `limit` UTF-16 units.

    Cuts prefer a paragraph break, then a line break, then a space, in the second half of the
    window; otherwise the cut is hard (never inside a surrogate pair). The cut depends only on
    the text before it, so a growing text keeps its earlier parts unchanged.
    """
    if limit < 2:
        raise ValueError("limit must leave room for a surrogate pair (>= 2)")
    parts: list[str] = []
    rest = text
    while utf16_len(rest) > limit:
        window = rest[: _prefix_within(rest, limit)]
        cut = len(window)
        for separator in ("\n\n", "\n", " "):
            at = window.rfind(separator)
            if at >= len(window) // 2:
                cut = at + len(separator)
                break
        if part := rest[:cut].rstrip():
            parts.append(part)
        rest = rest[cut:].lstrip("\n")
    if rest.strip() or not parts:
        parts.append(rest)
    return parts
