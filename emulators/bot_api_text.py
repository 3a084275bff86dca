"""Text rules of the Telegram Bot API emulator: UTF-16 lengths, entities, HTML and MarkdownV2.

Everything here is pure: functions take text and return ``(plain_text, entities)`` or raise
:class:`EntityError` whose message is the part after ``"Bad Request: can't parse entities: "``.
Offsets and lengths are in UTF-16 code units, as Telegram counts them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text`` as a set."""
    return frozenset(text.split())


ENTITY_TYPES = words(
    "mention hashtag cashtag bot_command url email phone_number bold italic underline "
    "strikethrough spoiler blockquote expandable_blockquote code pre text_link "
    "text_mention custom_emoji date_time"
)
ENTITY_KEYS = ("type", "offset", "length", "url", "user", "language", "custom_emoji_id")
HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
MD2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
URL_RE = re.compile(r"^(https?://[^\s]+|tg://[^\s]+)$", re.IGNORECASE)
_ATTR_RE = re.compile(r"""([a-zA-Z][\w-]*)\s*(?:=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+)))?""")
_HTML_ENTITY_RE = re.compile(r"&(lt|gt|amp|quot|#\d{1,7}|#x[0-9a-fA-F]{1,6});")
_COMMAND_RE = re.compile(r"^/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w@])")
_MENTION_RE = re.compile(r"(?<![\w@/])@[A-Za-z0-9_]{1,32}(?!\w)")
_URL_AUTO_RE = re.compile(r"(?<!\S)https?://[^\s<>\"]+[^\s<>\".,;:!?)\]]")
_HASHTAG_RE = re.compile(r"(?<![\w#])#[^\W\d]\w*")


class EntityError(ValueError):
    """Raised when text or entities cannot be parsed; the message is Telegram's reason."""


def u16len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def byte_offset(text: str, index: int) -> int:
    """UTF-8 byte offset of character ``index`` in ``text``."""
    return len(text[:index].encode("utf-8"))


def sort_entities(entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Order entities like Telegram: by offset, longer (outer) entities first."""
    return sorted(entities, key=lambda e: (e["offset"], -e["length"]))


# ----------------------------------------------------------------------------- explicit entities


def validate_entities(text: str, entities: Any) -> list[dict[str, Any]]:
    """Check caller-supplied entities against ``text`` and return normalised copies."""
    if entities is None:
        return []
    if not isinstance(entities, list):
        raise EntityError("entities must be an array")
    total = u16len(text)
    return sort_entities([_validate_entity(e, total) for e in entities])


def _validate_entity(entity: Any, total: int) -> dict[str, Any]:
    if not isinstance(entity, dict):
        raise EntityError("entity must be an object")
    kind, offset, length = entity.get("type"), entity.get("offset"), entity.get("length")
    if kind not in ENTITY_TYPES:
        raise EntityError(f'unsupported entity type "{kind}"')
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise EntityError("entity offset must be a non-negative integer")
    if not isinstance(length, int) or isinstance(length, bool) or length <= 0:
        raise EntityError("entity length must be positive")
    if offset + length > total:
        raise EntityError(f"entity {kind} at offset {offset} is beyond the end of the text")
    if kind == "text_link" and not URL_RE.match(str(entity.get("url") or "")):
        raise EntityError("wrong HTTP URL specified for text_link")
    if kind == "text_mention" and not isinstance((entity.get("user") or {}).get("id"), int):
        raise EntityError("text_mention requires a user")
    if kind == "custom_emoji" and not entity.get("custom_emoji_id"):
        raise EntityError("custom_emoji requires custom_emoji_id")
    return {k: entity[k] for k in ENTITY_KEYS if entity.get(k) is not None}


# ----------------------------------------------------------------------------- auto detection


def detect_entities(text: str) -> list[dict[str, Any]]:
    """Entities Telegram's clients/servers detect in a plain user message."""
    found: list[dict[str, Any]] = []

    def add(kind: str, start: int, end: int) -> None:
        offset = u16len(text[:start])
        found.append({"type": kind, "offset": offset, "length": u16len(text[start:end])})

    command = _COMMAND_RE.match(text)
    if command:
        add("bot_command", 0, command.end())
    for regex, kind in ((_MENTION_RE, "mention"), (_URL_AUTO_RE, "url"), (_HASHTAG_RE, "hashtag")):
        for match in regex.finditer(text):
            add(kind, match.start(), match.end())
    return sort_entities(found)


# ----------------------------------------------------------------------------- parse modes


@dataclass
class _Builder:
    """Accumulates plain text and entities while a markup parser walks its source."""

    parts: list[str] = field(default_factory=list)
    pos: int = 0
    entities: list[dict[str, Any]] = field(default_factory=list)

    def add(self, chunk: str) -> None:
        self.parts.append(chunk)
        self.pos += u16len(chunk)

    def close(self, entity: dict[str, Any], start: int, end: int | None = None) -> None:
        end = self.pos if end is None else end
        if end > start:
            self.entities.append({**entity, "offset": start, "length": end - start})

    def result(self) -> tuple[str, list[dict[str, Any]]]:
        return "".join(self.parts), sort_entities(self.entities)


def parse_text(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Apply ``parse_mode`` (None, HTML, MarkdownV2 or Markdown) to ``text``."""
    mode = (parse_mode or "").strip().lower()
    if not mode:
        return text, []
    if mode == "html":
        return parse_html(text)
    if mode == "markdownv2":
        return parse_markdown_v2(text)
    if mode == "markdown":
        return parse_markdown_legacy(text)
    raise ValueError("unsupported parse_mode")


def parse_html(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram's HTML subset."""
    out = _Builder()
    stack: list[tuple[str, dict[str, Any], int]] = []
    i = 0
    while i < len(src):
        char = src[i]
        if char == "<":
            i = _html_tag(src, i, out, stack)
        elif char == "&":
            match = _HTML_ENTITY_RE.match(src, i)
            out.add(_decode_html_entity(match.group(1)) if match else "&")
            i = match.end() if match else i + 1
        else:
            out.add(char)
            i += 1
    if stack:
        raise EntityError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _decode_html_entity(name: str) -> str:
    if not name.startswith("#"):
        return HTML_ENTITIES[name.lower()]
    code = int(name[2:], 16) if name[1:2] in ("x", "X") else int(name[1:])
    if not 0 < code <= 0x10FFFF:
        raise EntityError(f"Invalid character code {code}")
    return chr(code)


def _html_tag(src: str, i: int, out: _Builder, stack: list[tuple[str, dict[str, Any], int]]) -> int:
    end = src.find(">", i)
    if end < 0:
        raise EntityError(f"Unclosed start tag at byte offset {byte_offset(src, i)}")
    inner = src[i + 1 : end]
    if inner.startswith("/"):
        name = inner[1:].strip().lower()
        if not stack:
            raise EntityError(f"Unexpected end tag at byte offset {byte_offset(src, i)}")
        tag, entity, start = stack.pop()
        if name != tag:
            raise EntityError(f'Can\'t find end tag corresponding to start tag "{tag}"')
        if entity:
            out.close(entity, start)
        return end + 1
    name_match = re.match(r"[a-zA-Z][\w-]*", inner)
    name = name_match.group(0).lower() if name_match else ""
    if name not in HTML_TAGS:
        raise EntityError(f'Unsupported start tag "{name}" at byte offset {byte_offset(src, i)}')
    attrs = {
        m.group(1).lower(): next((g for g in m.groups()[1:] if g is not None), "")
        for m in _ATTR_RE.finditer(inner[len(name) :])
    }
    stack.append((name, _html_entity_for(name, attrs, stack), out.pos))
    return end + 1


def _html_entity_for(
    name: str, attrs: dict[str, str], stack: list[tuple[str, dict[str, Any], int]]
) -> dict[str, Any]:
    if name == "span" and attrs.get("class") != "tg-spoiler":
        raise EntityError('Tag "span" must have class "tg-spoiler"')
    if name == "a":
        href = _HTML_ENTITY_RE.sub(lambda m: _decode_html_entity(m.group(1)), attrs.get("href", ""))
        if not href:
            return {}
        if not URL_RE.match(href):
            raise EntityError(f'Wrong HTTP URL "{href}"')
        return {"type": "text_link", "url": href}
    if name == "code" and stack and stack[-1][0] == "pre":
        language = attrs.get("class", "").removeprefix("language-")
        if language:
            stack[-1][1]["language"] = language
        return {}
    if name == "blockquote" and "expandable" in attrs:
        return {"type": "expandable_blockquote"}
    if name == "tg-emoji":
        if not attrs.get("emoji-id"):
            raise EntityError('Tag "tg-emoji" must have attribute "emoji-id"')
        return {"type": "custom_emoji", "custom_emoji_id": attrs["emoji-id"]}
    return {"type": HTML_TAGS[name]}


_MD2_SIMPLE = {"*": "bold", "~": "strikethrough"}


def parse_markdown_v2(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse MarkdownV2 strictly: every reserved character must be markup or escaped."""
    out = _Builder()
    stack: list[tuple[str, dict[str, Any], int, int]] = []  # marker, entity, start, src index
    quote: int | None = None
    i = 0
    while i < len(src):
        char = src[i]
        line_start = i == 0 or src[i - 1] == "\n"
        if line_start and char == ">":
            quote = out.pos if quote is None else quote
            i += 1
        elif line_start and quote is not None:
            out.close({"type": "blockquote"}, quote, out.pos - 1)
            quote = None
        elif char == "\\":
            i = _md2_escape(src, i, out)
        elif src.startswith("```", i):
            i = _md2_pre(src, i, out)
        elif char == "`":
            i = _md2_code(src, i, out)
        elif char == "]" and stack and stack[-1][0] == "[":
            i = _md2_link_end(src, i, out, stack.pop())
        else:
            i = _md2_marker(src, i, out, stack)
    if quote is not None:
        out.close({"type": "blockquote"}, quote)
    if stack:
        raise EntityError(
            f"Can't find end of the entity starting at byte offset {byte_offset(src, stack[-1][3])}"
        )
    return out.result()


def _md2_escape(src: str, i: int, out: _Builder) -> int:
    if i + 1 < len(src) and 1 <= ord(src[i + 1]) <= 126:
        out.add(src[i + 1])
        return i + 2
    out.add("\\")
    return i + 1


def _md2_marker(
    src: str, i: int, out: _Builder, stack: list[tuple[str, dict[str, Any], int, int]]
) -> int:
    char = src[i]
    marker = char
    if char in "_|" and src.startswith(char * 2, i):
        marker = char * 2
    elif char == "!" and src.startswith("![", i):
        marker = "!["
    kind = {"_": "italic", "__": "underline", "||": "spoiler", "[": "", "![": ""}.get(
        marker, _MD2_SIMPLE.get(marker)
    )
    if kind is None:
        if char in MD2_RESERVED:
            raise EntityError(
                f"Character '{char}' is reserved and must be escaped with the preceding '\\'"
            )
        out.add(char)
        return i + 1
    if stack and stack[-1][0] == marker and marker not in ("[", "!["):
        _, entity, start, _ = stack.pop()
        out.close(entity, start)
    else:
        stack.append(
            (
                marker if marker != "![" else "[",
                {"type": kind} if kind else {"emoji": marker == "!["},
                out.pos,
                i,
            )
        )
    return i + len(marker)


def _md2_link_end(
    src: str, i: int, out: _Builder, opened: tuple[str, dict[str, Any], int, int]
) -> int:
    _, entity, start, _ = opened
    if not src.startswith("(", i + 1):
        raise EntityError("Character ']' is reserved and must be escaped with the preceding '\\'")
    j, url = i + 2, []
    while j < len(src) and src[j] != ")":
        if src[j] == "\\" and j + 1 < len(src):
            j += 1
        url.append(src[j])
        j += 1
    if j >= len(src):
        raise EntityError(f"Can't find end of a URL at byte offset {byte_offset(src, i + 1)}")
    target = "".join(url)
    if entity["emoji"]:
        emoji_id = target.removeprefix("tg://emoji?id=")
        out.close({"type": "custom_emoji", "custom_emoji_id": emoji_id}, start)
    elif not URL_RE.match(target):
        raise EntityError(f'Wrong HTTP URL "{target}"')
    else:
        out.close({"type": "text_link", "url": target}, start)
    return j + 1


def _md2_code(src: str, i: int, out: _Builder) -> int:
    start, j = out.pos, i + 1
    while j < len(src) and src[j] != "`":
        j = _md2_escape(src, j, out) if src[j] == "\\" else _add_one(src, j, out)
    if j >= len(src):
        raise EntityError(
            f"Can't find end of the entity starting at byte offset {byte_offset(src, i)}"
        )
    out.close({"type": "code"}, start)
    return j + 1


def _md2_pre(src: str, i: int, out: _Builder) -> int:
    j, language = i + 3, ""
    newline = src.find("\n", j)
    first_line = src[j:newline] if newline >= 0 else ""
    if newline >= 0 and re.fullmatch(r"[\w+#.-]*", first_line):
        language, j = first_line, newline + 1
    start = out.pos
    while j < len(src) and not src.startswith("```", j):
        j = _md2_escape(src, j, out) if src[j] == "\\" else _add_one(src, j, out)
    if j >= len(src):
        raise EntityError(
            f"Can't find end of the entity starting at byte offset {byte_offset(src, i)}"
        )
    out.close({"type": "pre", **({"language": language} if language else {})}, start)
    return j + 3


def _add_one(src: str, j: int, out: _Builder) -> int:
    out.add(src[j])
    return j + 1


def parse_markdown_legacy(src: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse legacy Markdown: ``*bold*``, ``_italic_``, `` `code` ``, ```` ```pre``` ````, links."""
    out = _Builder()
    i = 0
    pattern = re.compile(
        r"\*([^*]*)\*|_([^_]*)_|```(.*?)```|`([^`]*)`|\[([^\]]*)\]\(([^)]*)\)", re.S
    )
    while i < len(src):
        match = pattern.match(src, i)
        if match is None:
            if src[i] in "*_`[":
                raise EntityError(
                    f"Can't find end of the entity starting at byte offset {byte_offset(src, i)}"
                )
            out.add(src[i])
            i += 1
            continue
        group = next(k for k in range(1, 6) if match.group(k) is not None)
        kind = ("bold", "italic", "pre", "code", "text_link")[group - 1]
        start = out.pos
        out.add(match.group(group))
        out.close({"type": kind, **({"url": match.group(6)} if group == 5 else {})}, start)
        i = match.end()
    return out.result()
