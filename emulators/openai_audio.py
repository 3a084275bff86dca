"""``POST /v1/audio/transcriptions`` of the OpenAI emulator: multipart, scripted transcripts.

Validates like OpenAI: a ``file`` and a known ``model`` are required; the format is judged by
the file name's extension (OpenAI's list, which includes ``oga``) and then by the bytes (an
unreadable file is "Audio file might be corrupted or unsupported"); past 25 MB the answer is 413.
Answers are queued with ``enqueue`` (a transcript string, or a ``Transcript`` with a fault
status); with nothing queued the transcript is ``"Transcript of <file name>"``. Every accepted
upload is recorded in ``uploads``.
"""

from __future__ import annotations

import email.parser
import email.policy
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from emulators.openai_errors import ApiError, stock_error

PATH = "/v1/audio/transcriptions"
LIMIT = 25 * 1024 * 1024
MODELS = ("whisper-1", "gpt-4o-transcribe", "gpt-4o-mini-transcribe")
FORMATS = ("flac", "m4a", "mp3", "mp4", "mpeg", "mpga", "oga", "ogg", "wav", "webm")
# Leading bytes of each container (offset, magic); mp3 may start with an ID3 tag or a frame sync.
MAGIC: dict[str, tuple[tuple[int, bytes], ...]] = {
    "ogg": ((0, b"OggS"),),
    "oga": ((0, b"OggS"),),
    "wav": ((0, b"RIFF"),),
    "flac": ((0, b"fLaC"),),
    "webm": ((0, b"\x1a\x45\xdf\xa3"),),
    "mp4": ((4, b"ftyp"),),
    "m4a": ((4, b"ftyp"),),
    "mp3": ((0, b"ID3"), (0, b"\xff\xfb"), (0, b"\xff\xf3"), (0, b"\xff\xf2")),
    "mpga": ((0, b"ID3"), (0, b"\xff\xfb")),
    "mpeg": ((0, b"ID3"), (0, b"\xff\xfb"), (0, b"\x00\x00\x01\xba")),
}


@dataclass
class Transcript:
    """One scripted answer: a text, or an HTTP fault (``status``) with an optional message."""

    text: str = ""
    status: int | None = None
    message: str | None = None


@dataclass
class Upload:
    """What the client sent: the form fields, the file's name, type and bytes."""

    fields: dict[str, str]
    file_name: str
    content_type: str
    data: bytes


class TranscriptionService:
    """The transcription endpoint; the emulator's middleware has already checked the key."""

    def __init__(self) -> None:
        self.models = set(MODELS)
        self.uploads: list[Upload] = []
        self._queue: deque[Transcript] = deque()

    def enqueue(self, *answers: Transcript | str) -> None:
        self._queue.extend(Transcript(a) if isinstance(a, str) else a for a in answers)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()  # read (and cached) by the recording middleware
        if len(raw) > LIMIT:
            raise ApiError(
                413,
                f"Maximum content size limit ({LIMIT}) exceeded ({len(raw)} bytes read)",
                type="server_error",
            )
        fields, upload = _parse_form(request.headers.get("Content-Type", ""), raw)
        model = fields.get("model")
        if not model:
            raise ApiError(400, "you must provide a model parameter", param="model")
        if model not in self.models:
            raise ApiError(400, f"Invalid model {model}: not a transcription model.", param="model")
        if upload is None:
            raise ApiError(400, "Missing required parameter: 'file'.", param="file")
        name, content_type, data = upload
        extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        if extension not in FORMATS:
            raise ApiError(
                400, f"Invalid file format. Supported formats: {list(FORMATS)}", param="file"
            )
        if not any(data[at : at + len(magic)] == magic for at, magic in MAGIC[extension]):
            raise ApiError(
                400,
                "Audio file might be corrupted or unsupported",
                param="file",
                code="invalid_value",
            )
        self.uploads.append(Upload(fields, name, content_type, data))
        answer = self._queue.popleft() if self._queue else Transcript(f"Transcript of {name}")
        if answer.status is not None:
            error = stock_error(answer.status, "", model)
            if answer.message is not None:
                error.message = answer.message
            raise error
        if fields.get("response_format") == "text":
            return web.Response(text=answer.text)
        return web.json_response({"text": answer.text, "usage": _usage(answer.text)})


def _usage(text: str) -> dict[str, Any]:
    return {"type": "duration", "seconds": max(1, len(text.split()) // 2)}


def _parse_form(
    content_type: str, raw: bytes
) -> tuple[dict[str, str], tuple[str, str, bytes] | None]:
    """The text fields and the ``file`` part of a multipart/form-data body."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(400, "Invalid Content-Type header, expected multipart/form-data.")
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    fields: dict[str, str] = {}
    upload: tuple[str, str, bytes] | None = None
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        decoded = part.get_payload(decode=True)
        payload = decoded if isinstance(decoded, bytes) else b""
        if name == "file":
            file_name = part.get_filename() or ""
            upload = (file_name, part.get_content_type(), payload)
        elif isinstance(name, str):
            fields[name] = payload.decode("utf-8", errors="replace")
    return fields, upload
