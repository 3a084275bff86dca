"""Images in a prompt: their text form for a model that cannot see them or a budget that
cannot hold them.

A stored image part keeps its bytes and its cost as an image; what the prompt sends is decided
per turn, by the chat's profile (a text-only model gets `[image: …]` and the caption) and by
the budget (old images give way to their text form before whole messages are dropped; a new
image too costly for the whole budget is sent at low detail). The
stored rows never change: a vision profile later, or a roomier turn, sends the image again.
"""

from __future__ import annotations

import dataclasses

from bot.llm.tokens import TokenCounter
from bot.parts import ImagePart, Part, TextPart, prompt_text
from bot.values import HistoryItem


def has_images(item: HistoryItem) -> bool:
    return any(isinstance(part, ImagePart) for part in item.parts)


def image_as_text(part: ImagePart, counter: TokenCounter) -> TextPart:
    """What stands in for an image: `[image: <description>]`, counted."""
    text = prompt_text(part)
    return TextPart(text, counter.count_text(text))


def at_low_detail(item: HistoryItem, counter: TokenCounter) -> HistoryItem:
    """The item with every image sent at `detail: low` (one fixed, small cost), recounted."""
    if not has_images(item):
        return item
    parts: list[Part] = []
    saved = 0
    for part in item.parts:
        if isinstance(part, ImagePart) and part.detail != "low":
            low = dataclasses.replace(part, detail="low", tokens=0)
            low = dataclasses.replace(low, tokens=counter.count_part(low))
            saved += (part.tokens or counter.count_part(part)) - low.tokens
            part = low
        parts.append(part)
    return dataclasses.replace(item, parts=tuple(parts), tokens=max(1, item.tokens - saved))


def without_images(item: HistoryItem, counter: TokenCounter) -> HistoryItem:
    """The item with every image as its text form, and its tokens lowered to match."""
    if not has_images(item):
        return item
    parts: list[Part] = []
    saved = 0
    for part in item.parts:
        if isinstance(part, ImagePart):
            light = image_as_text(part, counter)
            saved += (part.tokens or counter.count_part(part)) - light.tokens
            part = light
        parts.append(part)
    return dataclasses.replace(item, parts=tuple(parts), tokens=max(1, item.tokens - saved))
