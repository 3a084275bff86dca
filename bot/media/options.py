"""The settings of bot/media as one small typed value, and which models can see images.

Built from bot.config.Settings (`MediaOptions.from_settings`); this package never reads the
environment itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bot.config import Settings
from bot.llm.image_tokens import ImageDetail, sees_images

MB = 1024 * 1024
TELEGRAM_DOWNLOAD_LIMIT = 20 * MB  # getFile answers "file is too big" past it
TRANSCRIPTION_LIMIT = 25 * MB  # OpenAI's /audio/transcriptions upload limit


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
    parse_timeout: float = 60.0  # MEDIA_PARSE_TIMEOUT: seconds a PDF/DOCX may take to parse

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaOptions:
        base_url, api_key = settings.transcription
        return cls(
            max_bytes=settings.media_max_bytes,
            image_detail=settings.image_detail,
            transcription_base_url=base_url,
            transcription_api_key=api_key,
            transcription_model=settings.transcription_model,
            transcription_language=settings.transcription_language,
            show_transcript=settings.show_transcript,
            document_max_tokens=settings.document_max_tokens,
            pdf_max_pages=settings.pdf_max_pages,
            concurrency=settings.media_concurrency,
            parse_timeout=settings.media_parse_timeout,
        )

    def __post_init__(self) -> None:
        if not 0 < self.max_bytes <= TELEGRAM_DOWNLOAD_LIMIT:
            raise ValueError("max_bytes must be between 1 and 20 MB (Telegram's limit)")
        if self.concurrency < 1 or self.image_max_side < 64 or self.document_max_tokens < 1:
            raise ValueError("concurrency, image_max_side and document_max_tokens are too small")
