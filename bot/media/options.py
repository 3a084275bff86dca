"""The settings of bot/media as one small typed value, and which models can see images.

Built by the caller from bot.config.Settings (and the chat's profile); this package never
reads the environment itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ImageDetail = Literal["auto", "low", "high"]

MB = 1024 * 1024
TELEGRAM_DOWNLOAD_LIMIT = 20 * MB  # getFile answers "file is too big" past it
TRANSCRIPTION_LIMIT = 25 * MB  # OpenAI's /audio/transcriptions upload limit

# Model names (provider prefixes dropped) that accept image parts, when VISION is unset.
VISION_PREFIXES = (
    "gpt-4o",
    "chatgpt-4o",
    "gpt-4.1",
    "gpt-4.5",
    "gpt-4-turbo",
    "gpt-4-vision",
    "gpt-5",
    "o1",
    "o3",
    "o4",
    "computer-use",
)
TEXT_ONLY_NAMES = ("o1-mini", "o3-mini", "gpt-4o-audio", "gpt-4o-realtime", "gpt-4o-mini-audio")
VISION_MARKERS = ("vision", "-vl", "llava", "pixtral", "gemma-3", "qwen2.5-omni")


def sees_images(model: str, vision: bool | None = None) -> bool:
    """Whether `model` accepts image parts: the VISION setting when given, else by its name."""
    if vision is not None:
        return vision
    name = model.rsplit("/", 1)[-1].lower()
    if name.startswith(TEXT_ONLY_NAMES):
        return False
    return name.startswith(VISION_PREFIXES) or any(m in name for m in VISION_MARKERS)


@dataclass(frozen=True, slots=True)
class ModelTarget:
    """The model a prepared attachment is for: its name, and whether it sees images."""

    model: str
    vision: bool

    @classmethod
    def for_model(cls, model: str, vision: bool | None = None) -> ModelTarget:
        return cls(model, sees_images(model, vision))


@dataclass(frozen=True, slots=True)
class MediaOptions:
    """Limits and endpoints of attachment handling (defaults are the documented ones)."""

    max_bytes: int = TELEGRAM_DOWNLOAD_LIMIT  # MEDIA_MAX_BYTES, never above Telegram's 20 MB
    image_max_side: int = 2048
    image_quality: int = 85  # JPEG quality of the stored, downscaled image
    max_pixels: int = 60_000_000  # decompression-bomb guard, checked before decoding
    image_detail: ImageDetail = "auto"  # IMAGE_DETAIL
    transcription_base_url: str = ""  # TRANSCRIPTION_BASE_URL; empty: voice is not understood
    transcription_api_key: str = field(default="", repr=False)  # TRANSCRIPTION_API_KEY
    transcription_model: str = "whisper-1"  # TRANSCRIPTION_MODEL
    transcription_language: str = ""  # TRANSCRIPTION_LANGUAGE (ISO-639-1), empty: detect
    transcription_timeout: float = 120.0
    transcription_max_bytes: int = TRANSCRIPTION_LIMIT
    show_transcript: bool = True  # SHOW_TRANSCRIPT
    document_max_tokens: int = 8000  # DOCUMENT_MAX_TOKENS: a longer document is cut
    pdf_max_pages: int = 500  # PDF pages read at most
    zip_max_bytes: int = 200 * MB  # DOCX: uncompressed size past which it is a zip bomb
    concurrency: int = 2  # MEDIA_CONCURRENCY: decodes/extractions at once per process

    def __post_init__(self) -> None:
        if not 0 < self.max_bytes <= TELEGRAM_DOWNLOAD_LIMIT:
            raise ValueError("max_bytes must be between 1 and 20 MB (Telegram's limit)")
        if self.concurrency < 1 or self.image_max_side < 64 or self.document_max_tokens < 1:
            raise ValueError("concurrency, image_max_side and document_max_tokens are too small")
