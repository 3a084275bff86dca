"""Speech to text through an OpenAI-compatible `POST {base}/audio/transcriptions`.

Works with OpenAI (whisper-1, gpt-4o-mini-transcribe), Groq and local whisper servers. The file
is sent as it came (a voice note's OGG/Opus, a video note's MP4): no ffmpeg. Servers detect the
format from the file name's extension, so the upload is named for its MIME type (Telegram calls
a voice note `.oga`, which OpenAI refuses). Failures become TranscriptionError codes, once,
without the API key or the server's URL.
"""

from __future__ import annotations

import logging
import posixpath

import httpx

from bot.media.types import (
    AUDIO_TOO_BIG,
    EMPTY,
    NOT_CONFIGURED,
    TRANSCRIPTION_FAILED,
    UNSUPPORTED_AUDIO,
    TranscriptionError,
)

logger = logging.getLogger(__name__)

ACCEPTED = frozenset({"flac", "mp3", "mp4", "mpeg", "mpga", "m4a", "ogg", "wav", "webm"})
EXTENSION_BY_MIME = {
    "audio/ogg": "ogg",
    "audio/opus": "ogg",
    "audio/x-opus+ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
    "audio/mp4": "m4a",
    "audio/m4a": "m4a",
    "audio/x-m4a": "m4a",
    "audio/aac": "m4a",
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/flac": "flac",
    "audio/x-flac": "flac",
    "audio/webm": "webm",
    "video/mp4": "mp4",
    "video/webm": "webm",
    "video/mpeg": "mpeg",
}
# Words of a 400 that mean "this file is not audio we can read" (OpenAI, Groq, whisper servers).
UNREADABLE = ("format", "decode", "corrupt", "unsupported")
ALIASES = {"oga": "ogg", "opus": "ogg", "m4v": "mp4"}


def upload_name(file_name: str | None, mime: str | None, stem: str = "audio") -> str | None:
    """A file name with an extension the API accepts, or None when the format is not one."""
    if file_name:
        stem_part, ext = posixpath.splitext(posixpath.basename(file_name).lower())
        ext = ALIASES.get(ext.lstrip("."), ext.lstrip("."))
        stem = stem_part or stem
        if ext in ACCEPTED:
            return f"{stem}.{ext}"
    known = EXTENSION_BY_MIME.get((mime or "").split(";", 1)[0].strip().lower())
    return f"{stem}.{known}" if known else None


class Transcriber:
    """A client of one transcription endpoint (model, base URL and key are settings)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str = "",
        model: str = "whisper-1",
        language: str = "",
        timeout: float = 120.0,
        max_bytes: int = 25 * 1024 * 1024,
    ) -> None:
        self._http = http
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.model = model
        self.language = language
        self.timeout = timeout
        self.max_bytes = max_bytes

    def __repr__(self) -> str:  # never the key
        return f"Transcriber(model={self.model!r})"

    @property
    def configured(self) -> bool:
        return bool(self._base_url)

    async def transcribe(
        self, data: bytes, *, file_name: str | None, mime: str | None, prompt: str = ""
    ) -> str:
        """The text spoken in `data`; TranscriptionError with a code otherwise."""
        if not self.configured:
            raise TranscriptionError(NOT_CONFIGURED)
        if len(data) > self.max_bytes:
            raise TranscriptionError(AUDIO_TOO_BIG, size=len(data), limit=self.max_bytes)
        name = upload_name(file_name, mime)
        if name is None:
            raise TranscriptionError(UNSUPPORTED_AUDIO, mime=mime or "")
        fields = {"model": self.model, "response_format": "json"}
        if self.language:
            fields["language"] = self.language
        if prompt:
            fields["prompt"] = prompt
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            response = await self._http.post(
                f"{self._base_url}/audio/transcriptions",
                data=fields,
                files={"file": (name, data, mime or "application/octet-stream")},
                headers=headers,
                timeout=self.timeout,
            )
        except httpx.HTTPError as exc:
            logger.warning("transcription request failed: %s", type(exc).__name__)
            raise TranscriptionError(TRANSCRIPTION_FAILED, status=0) from None
        text = _text_of(response)
        logger.debug("transcribed %d bytes into %d characters", len(data), len(text))
        return text


def _text_of(response: httpx.Response) -> str:
    status = response.status_code
    if status == 413:
        raise TranscriptionError(AUDIO_TOO_BIG)
    try:
        body = response.json()
    except ValueError:
        body = None
    if status != 200:
        message = ""
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            message = str(body["error"].get("message", "")).lower()
        if status == 400 and any(word in message for word in UNREADABLE):
            raise TranscriptionError(UNSUPPORTED_AUDIO)
        logger.warning("transcription server answered HTTP %d", status)
        raise TranscriptionError(TRANSCRIPTION_FAILED, status=status)
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str):
        raise TranscriptionError(TRANSCRIPTION_FAILED, status=status)
    if not text.strip():
        raise TranscriptionError(EMPTY)
    return text.strip()
