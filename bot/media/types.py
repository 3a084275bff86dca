"""The typed interface of bot/media: an attachment in, `bot.parts` parts (to store and send) out.

MediaError
├── DownloadError        getFile or the file download failed (codes: too_big, not_found, ...)
├── ImageError           the image could not be read (corrupt, bomb, unsupported)
├── TranscriptionError   the transcription server failed or is not configured
└── DocumentError        the document could not be read (encrypted, scanned, broken, ...)

Errors carry a `code` and `values` (e.g. {"size": 5000, "limit": 4096}); the frontend (bot.wording)
renders the sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from bot.errors import BotError
from bot.notices import Notice
from bot.parts import Part

AttachmentKind = Literal[
    "photo", "image", "voice", "audio", "video_note", "video", "document", "unsupported"
]
#: The values of an error or a note (JSON-serialisable, for the frontend's sentence).
DataValue = str | int | float | bool | None

# Error codes (stable: frontends map them to sentences, tests assert them).
TOO_BIG = "too_big"  # values: size, limit
NOT_FOUND = "not_found"  # Telegram no longer has the file
DOWNLOAD_FAILED = "download_failed"  # values: status (0 for a network failure)
CORRUPT = "corrupt"  # an image or a file that does not decode
BOMB = "decompression_bomb"  # values: pixels, limit
UNSUPPORTED = "unsupported"  # values: kind, mime
NOT_CONFIGURED = "not_configured"  # transcription has no server
TRANSCRIPTION_FAILED = "transcription_failed"  # values: status
AUDIO_TOO_BIG = "audio_too_big"  # values: size, limit
UNSUPPORTED_AUDIO = "unsupported_audio"  # values: mime
ENCRYPTED = "encrypted"  # a password-protected PDF
SCANNED = "scanned"  # a PDF without a text layer; values: pages
BROKEN = "broken"  # a PDF or DOCX that does not parse
EMPTY = "empty"  # nothing readable in the file (or an empty transcript)
TOO_SLOW = "too_slow"  # a document still not read after MEDIA_PARSE_TIMEOUT; values: seconds


class MediaError(BotError):
    """An attachment the bot cannot use; `code` and `values` say why, for the frontend."""

    def __init__(self, code: str, **values: DataValue) -> None:
        super().__init__(code if not values else f"{code} {values}")
        self.code = code
        self.values: dict[str, DataValue] = values

    def __reduce__(self) -> tuple[object, ...]:
        # Raised in a parsing worker process and re-raised in the bot's: keep code and values.
        return (_rebuilt, (type(self), self.code, self.values))


def _rebuilt(cls: type[MediaError], code: str, values: dict[str, DataValue]) -> MediaError:
    return cls(code, **values)


class DownloadError(MediaError):
    """getFile or the download of the file failed."""


class ImageError(MediaError):
    """The image does not decode, is a decompression bomb, or is of an unsupported kind."""


class TranscriptionError(MediaError):
    """The transcription server failed, refused the file, or is not configured."""


class DocumentError(MediaError):
    """The document is encrypted, scanned, broken, or of an unsupported kind."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """One file of an incoming message, as Telegram describes it (nothing downloaded yet)."""

    kind: AttachmentKind
    file_id: str
    file_unique_id: str
    size: int | None = None  # file_size when Telegram sent it
    mime: str | None = None
    file_name: str | None = None
    caption: str = ""
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    media_group_id: str | None = None
    source: str = ""  # the Bot API field it came in: photo, voice, document, sticker, poll...


#: Something the user should be told about a prepared attachment: "truncated", "no_vision",
#: "transcript", "no_caption", "skipped", "scanned_as_images" (the frontend words it).
Note = Notice


@dataclass(frozen=True, slots=True)
class Prepared:
    """What one attachment became: the parts to store (and send), and notes for the user.

    `notes` are codes with values the frontend renders above the answer (a document cut to
    the budget, a text-only model that cannot see the image, the transcript to show).
    """

    parts: tuple[Part, ...]
    notes: tuple[Note, ...] = ()

    @property
    def token_count(self) -> int:
        return sum(part.tokens for part in self.parts)


class TextCounter(Protocol):
    """Counts tokens for the profile's model (bot.llm.tokens.TokenCounter)."""

    def count_text(self, text: str) -> int: ...

    def count_part(self, part: Part) -> int: ...
