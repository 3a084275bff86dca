"""Model Markdown → Telegram text + entities, cut into messages of at most 4096 UTF-16 units.

Rendering to entities (never parse_mode) means a reply cannot fail on Telegram's Markdown
parser. Mid-stream text is rendered sanely: an open code fence is closed. Text outside code is
HTML-escaped first, because the renderer drops inline HTML (`use the <b> tag` would lose the
tag). Links other than http(s)/tg are shown as plain text. Anything the renderer cannot handle
falls back to plain text.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

import telegramify_markdown
from telegram import MessageEntity

from bot.telegram.split import TELEGRAM_TEXT_LIMIT, split_text, utf16_len

logger = logging.getLogger(__name__)

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
DOLLAR = re.compile(r"(?<!\\)\$")
SAFE_LINK = re.compile(r"^(https?|tg)://", re.IGNORECASE)
KEPT_TYPES = frozenset(
    {
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "code",
        "pre",
        "text_link",
        "blockquote",
        "expandable_blockquote",
    }
)

# (type, offset, length, url, language): comparable, so unchanged parts are never re-sent.
Entity = tuple[str, int, int, str | None, str | None]


@dataclass(frozen=True, slots=True)
class Part:
    """The text and entities of one Telegram message."""

    text: str
    entities: tuple[Entity, ...] = ()

    def telegram_entities(self) -> list[MessageEntity]:
        return [
            MessageEntity(type, offset, length, url=url, language=language)
            for type, offset, length, url, language in self.entities
        ]


def _escape_prose(text: str) -> str:
    """Keep HTML and `$` literal: the renderer drops inline HTML and reads `$…$` as math."""
    return DOLLAR.sub(r"\\$", text.replace("&", "&amp;").replace("<", "&lt;"))


def _escape_outside_code(line: str) -> str:
    out, last = [], 0
    for span in CODE_SPAN.finditer(line):
        out += [_escape_prose(line[last : span.start()]), span.group(0)]
        last = span.end()
    out.append(_escape_prose(line[last:]))
    return "".join(out)


def prepare(markdown: str, *, final: bool) -> str:
    """Escape prose outside code; mid-stream, close a code fence that is still open."""
    out: list[str] = []
    fence: str | None = None  # the marker of the open fence, if any
    for line in markdown.splitlines(keepends=True):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None:
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence):
                fence = None
        else:
            line = _escape_outside_code(line)
        out.append(line)
    text = "".join(out)
    if fence is not None and not final:
        text += ("" if text.endswith("\n") else "\n") + fence
    return text


def _kept(entity: telegramify_markdown.MessageEntity) -> Entity | None:
    if entity.type not in KEPT_TYPES or entity.length <= 0:
        return None
    if entity.type == "text_link" and not SAFE_LINK.match(entity.url or ""):
        return None
    return (entity.type, entity.offset, entity.length, entity.url, entity.language)


def render_markdown(markdown: str, *, final: bool = True) -> list[Part]:
    """Telegram messages showing `markdown`, formatted; plain text if rendering fails."""
    try:
        text, entities = telegramify_markdown.convert(
            prepare(markdown, final=final), latex_escape=False
        )
        chunks = telegramify_markdown.split_entities(text, entities, TELEGRAM_TEXT_LIMIT)
    except Exception:  # a third-party renderer must never cost us the reply
        logger.warning("markdown rendering failed; sending plain text", exc_info=True)
        return render_plain(markdown)
    parts = []
    for chunk_text, chunk_entities in chunks:
        kept = tuple(e for e in map(_kept, chunk_entities) if e is not None)
        if part := _trimmed(chunk_text, kept):
            parts.append(part)
    return parts if parts or not markdown.strip() else render_plain(markdown)


def _trimmed(text: str, entities: tuple[Entity, ...]) -> Part | None:
    """Strip the whitespace Telegram would strip, moving and clipping entities to match."""
    stripped = text.strip()
    if not stripped:
        return None
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    end = utf16_len(stripped)
    moved = []
    for type, offset, length, url, language in entities:
        start, stop = max(offset - shift, 0), min(offset + length - shift, end)
        if stop > start:
            moved.append((type, start, stop - start, url, language))
    return Part(stripped, tuple(moved))


def render_plain(text: str) -> list[Part]:
    """Telegram messages showing `text` as it is."""
    return [Part(chunk) for chunk in split_text(text) if chunk.strip()]


REASONING_SHOWN = 1500  # characters of the model's thinking shown (the rest is cut)


def with_reasoning(parts: list[Part], reasoning: str) -> list[Part]:
    """Put the model's thinking, collapsed (expandable blockquote), above the answer."""
    text = reasoning.strip()
    if not text:
        return parts
    if len(text) > REASONING_SHOWN:
        text = text[: REASONING_SHOWN - 1].rstrip() + "…"
    quote = Part(text, (("expandable_blockquote", 0, utf16_len(text), None, None),))
    if not parts or utf16_len(text) + 2 + utf16_len(parts[0].text) > TELEGRAM_TEXT_LIMIT:
        return [quote, *parts]
    first, shift = parts[0], utf16_len(text) + 2
    moved = tuple(
        (t, offset + shift, length, url, lang) for t, offset, length, url, lang in first.entities
    )
    return [Part(f"{text}\n\n{first.text}", quote.entities + moved), *parts[1:]]
