"""Which attachment a Telegram message carries, read from its Bot API JSON (`Message.to_dict()`).

Kept free of python-telegram-bot types so the core does not depend on the frontend's library.
Stickers, locations, polls, contacts, dice and the like give an "unsupported" attachment
(the frontend keeps its clear answer for them), and so does a photo, voice or document
without a file id (its `source` the media field); a text-only message gives None.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.media.types import Attachment, AttachmentKind

IMAGE_MIMES = ("image/jpeg", "image/png", "image/webp", "image/gif", "image/heic", "image/heif")
UNSUPPORTED_FIELDS = (
    "sticker",
    "location",
    "venue",
    "poll",
    "contact",
    "dice",
    "game",
    "animation",
    "story",
    "invoice",
    "paid_media",
)
MEDIA_FIELDS: tuple[tuple[str, AttachmentKind], ...] = (
    ("voice", "voice"),
    ("audio", "audio"),
    ("video_note", "video_note"),
    ("video", "video"),
    ("document", "document"),
)


def attachment_from_message(message: Mapping[str, Any]) -> Attachment | None:
    """The message's attachment, or None for a message with none (plain text)."""
    caption = str(message.get("caption") or "")
    group = message.get("media_group_id")
    group_id = str(group) if group is not None else None
    photo = message.get("photo")
    if isinstance(photo, list) and photo:
        sizes = [size for size in photo if isinstance(size, Mapping) and _has_file(size)]
        if not sizes:
            return _without_file("photo", caption)
        largest = max(sizes, key=lambda size: _number(size, "width") * _number(size, "height"))
        return _attachment("photo", "photo", largest, caption, group_id, mime="image/jpeg")
    for field, kind in MEDIA_FIELDS:
        item = message.get(field)
        if isinstance(item, Mapping) and not _has_file(item):
            return _without_file(field, caption)
        if isinstance(item, Mapping):
            if kind == "document" and str(item.get("mime_type", "")).lower() in IMAGE_MIMES:
                kind = "image"  # a photo sent as a file: full quality, the file's own format
            return _attachment(kind, field, item, caption, group_id)
    for field in UNSUPPORTED_FIELDS:
        if message.get(field) is not None:
            item = message[field] if isinstance(message[field], Mapping) else {}
            return Attachment(
                "unsupported",
                str(item.get("file_id", "")),
                str(item.get("file_unique_id", "")),
                caption=caption,
                source=field,
            )
    return None


def _has_file(item: Mapping[str, Any]) -> bool:
    return isinstance(item.get("file_id"), str) and bool(item["file_id"])


def _number(item: Mapping[str, Any], key: str) -> int:
    value = item.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _without_file(field: str, caption: str) -> Attachment:
    """A media field without a file id (malformed): nothing to download."""
    return Attachment("unsupported", "", "", caption=caption, source=field)


def _attachment(
    kind: AttachmentKind,
    source: str,
    item: Mapping[str, Any],
    caption: str,
    group_id: str | None,
    *,
    mime: str | None = None,
) -> Attachment:
    def number(key: str) -> int | None:
        value = item.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    length = number("length")  # a video note is square: `length` is its side
    return Attachment(
        kind=kind,
        file_id=str(item["file_id"]),
        file_unique_id=str(item.get("file_unique_id", "")),
        size=number("file_size"),
        mime=str(item.get("mime_type") or mime or "") or None,
        file_name=item.get("file_name") if isinstance(item.get("file_name"), str) else None,
        caption=caption,
        width=number("width") or length,
        height=number("height") or length,
        duration=number("duration"),
        media_group_id=group_id,
        source=source,
    )
