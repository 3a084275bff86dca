"""A message's parts as the content of each API mode (pure functions, no I/O).

chat/completions: `[{"type": "text", ...}, {"type": "image_url", "image_url": {"url": "data:…",
"detail": …}}]`; Responses: `input_text` / `input_image` items; completions: text only, an image
as its placeholder. Images always go as `data:` URLs (never a Telegram file URL, which holds the
bot token). A model that cannot see images gets every part's text form, and a plain string when
nothing but text is left (what every server accepts).
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Sequence
from typing import Any

from bot.media.types import Part

JSON = dict[str, Any]


def data_url(mime: str, blob: bytes) -> str:
    """`data:<mime>;base64,<bytes>`."""
    return f"data:{mime};base64,{base64.b64encode(blob).decode('ascii')}"


def _image_url(part: Part) -> str | None:
    if part.kind != "image" or part.blob is None:
        return None
    return data_url(str(part.data.get("mime") or "image/jpeg"), part.blob)


def text_form(parts: Sequence[Part]) -> str:
    """Every part's text form, one per paragraph (what a text-only prompt and search see)."""
    return "\n\n".join(part.text for part in parts if part.text)


def chat_content(parts: Sequence[Part], *, vision: bool) -> str | list[JSON]:
    """The `content` of a chat/completions user message."""
    if not vision or not any(_image_url(part) for part in parts):
        return text_form(parts)
    content: list[JSON] = []
    for part in parts:
        url = _image_url(part)
        if url is not None:
            detail = str(part.data.get("detail") or "auto")
            content.append({"type": "image_url", "image_url": {"url": url, "detail": detail}})
        elif part.text:
            content.append({"type": "text", "text": part.text})
    return content


def responses_content(parts: Sequence[Part], *, vision: bool) -> str | list[JSON]:
    """The `content` of a Responses API user input item."""
    if not vision or not any(_image_url(part) for part in parts):
        return text_form(parts)
    content: list[JSON] = []
    for part in parts:
        url = _image_url(part)
        if url is not None:
            detail = str(part.data.get("detail") or "auto")
            content.append({"type": "input_image", "image_url": url, "detail": detail})
        elif part.text:
            content.append({"type": "input_text", "text": part.text})
    return content


def completions_text(parts: Sequence[Part]) -> str:
    """The text of a message in completions mode: images as their placeholders."""
    return text_form(parts)


def prompt_tokens(parts: Sequence[Part], *, vision: bool) -> int:
    """Tokens of the parts as sent: image cost on a vision model, else the text forms."""
    total = 0
    for part in parts:
        if part.kind == "image" and vision and part.blob is not None:
            total += int(part.data.get("image_tokens") or part.token_count)
        else:
            total += part.text_tokens
    return total


def shed_images(history: Sequence[Sequence[Part]], excess: int) -> tuple[list[list[Part]], int]:
    """Images give way to their text form, oldest first, until `excess` tokens are saved.

    `history` is the messages' parts, oldest first. Returns the new history and the tokens
    saved; when that is still short of `excess`, the caller drops whole messages, oldest
    first, as for text. The stored rows keep their images: only this prompt is lighter.
    """
    saved = 0
    result: list[list[Part]] = []
    for parts in history:
        kept: list[Part] = []
        for part in parts:
            if saved < excess and part.kind == "image" and part.blob is not None:
                saved += max(0, part.token_count - part.text_tokens)
                part = dataclasses.replace(part, blob=None, token_count=part.text_tokens)
            kept.append(part)
        result.append(kept)
    return result, saved
