"""Files of the Telegram Bot API emulator: ``getFile``, the file server, and media injectors.

``getFile`` answers like Telegram: ``file_path`` for a known file, 400 "Bad Request: invalid
file_id" for an unknown one, 400 "Bad Request: file is too big" past 20 MB. The bytes are
served at ``/file/bot<token>/<file_path>`` (404 for an unknown path or a wrong token), with a
Content-Length unless the file was added with ``chunked=True``. The injectors send updates
shaped like Telegram's: a photo as an array of ``PhotoSize``s (each its own downscaled JPEG,
the original the largest), ``file_unique_id``, ``file_size``, ``mime_type``, ``caption`` with
``caption_entities``, ``media_group_id`` for albums.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

from emulators.bot_api_support import ApiError
from emulators.bot_api_text import detect_entities

DOWNLOAD_LIMIT = 20 * 1024 * 1024
PHOTO_SIDES = (90, 320, 800, 1280)  # Telegram's thumbnail ladder (s, m, x, y)
FOLDERS = {
    "photo": ("photos", "jpg"),
    "voice": ("voice", "oga"),
    "audio": ("music", "mp3"),
    "video_note": ("video_notes", "mp4"),
    "video": ("videos", "mp4"),
    "document": ("documents", ""),
}


@dataclass
class StoredFile:
    """One file Telegram keeps: its ids, its path on the file server and its bytes."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes
    size: int  # what Telegram reports (a test may declare a huge size without the bytes)
    chunked: bool = False  # served without Content-Length


@dataclass
class FileStore:
    """Every file the emulated Telegram holds, and every download served."""

    token: str
    files: dict[str, StoredFile] = field(default_factory=dict)
    downloads: list[str] = field(default_factory=list)  # file paths served, in order
    # While an unset Event, every download waits for it before its first byte (a slow file
    # server: a test can stop the bot while it is fetching a file).
    held: asyncio.Event | None = None
    _counter: itertools.count[int] = field(default_factory=lambda: itertools.count())

    def add(
        self,
        data: bytes,
        kind: str,
        *,
        extension: str = "",
        size: int | None = None,
        chunked: bool = False,
    ) -> StoredFile:
        """Register ``data`` as a new file of ``kind`` (photo, voice, document...)."""
        folder, default_ext = FOLDERS.get(kind, ("documents", ""))
        ext = extension or default_ext
        n = next(self._counter)
        path = f"{folder}/file_{n}" + (f".{ext}" if ext else "")
        stored = StoredFile(
            file_id="BQACAgIAAx" + uuid.uuid4().hex + uuid.uuid4().hex[:8],
            file_unique_id="AgAD" + uuid.uuid4().hex[:12],
            file_path=path,
            data=data,
            size=len(data) if size is None else size,
            chunked=chunked,
        )
        self.files[stored.file_id] = stored
        return stored

    def object(self, stored: StoredFile, **extra: Any) -> dict[str, Any]:
        """The Bot API object of a stored file (a PhotoSize, Voice, Document...)."""
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            **{k: v for k, v in extra.items() if v is not None},
        }

    async def m_getFile(self, params: dict[str, Any]) -> Any:
        file_id = params.get("file_id")
        if not file_id:
            raise ApiError("Bad Request: file_id is empty")
        stored = self.files.get(str(file_id))
        if stored is None:
            raise ApiError("Bad Request: invalid file_id")
        if stored.size > DOWNLOAD_LIMIT:
            raise ApiError("Bad Request: file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": stored.size,
            "file_path": stored.file_path,
        }

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """``GET /file/bot<token>/<file_path>``: the bytes, or Telegram's 404."""
        path = request.match_info["path"]
        stored = next((f for f in self.files.values() if f.file_path == path), None)
        if request.match_info["token"] != self.token or stored is None:
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found"}, status=404
            )
        self.downloads.append(path)
        if self.held is not None:
            await self.held.wait()
        if not stored.chunked:
            return web.Response(body=stored.data, content_type="application/octet-stream")
        response = web.StreamResponse()
        response.content_type = "application/octet-stream"
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(stored.data), 64 * 1024):
            await response.write(stored.data[start : start + 64 * 1024])
        await response.write_eof()
        return response


def photo_sizes(store: FileStore, image: bytes) -> list[dict[str, Any]]:
    """The PhotoSize array Telegram makes of an uploaded photo: thumbnails, then the original."""
    with Image.open(io.BytesIO(image)) as original:
        width, height = original.size
        sizes: list[dict[str, Any]] = []
        for side in PHOTO_SIDES:
            if side >= max(width, height):
                break
            thumb = original.convert("RGB")
            thumb.thumbnail((side, side))
            out = io.BytesIO()
            thumb.save(out, "JPEG", quality=80)
            stored = store.add(out.getvalue(), "photo")
            sizes.append(store.object(stored, width=thumb.width, height=thumb.height))
    stored = store.add(image, "photo")
    sizes.append(store.object(stored, width=width, height=height))
    return sizes


class FileInjectors:
    """The user side of media, mixed into BotAPIEmulator (which provides these attributes)."""

    files: FileStore

    def send_message(
        self, chat_id: int, *, user_id: int | None = None, chat_type: str = "private", **fields: Any
    ) -> dict[str, Any]:
        raise NotImplementedError  # pragma: no cover - BotAPIEmulator's

    def _caption(self, caption: str | None) -> dict[str, Any]:
        if not caption:
            return {}
        return {"caption": caption, "caption_entities": detect_entities(caption) or None}

    def send_photo(
        self,
        chat_id: int,
        image: bytes,
        *,
        caption: str | None = None,
        media_group_id: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A user sends a photo (compressed by Telegram into a PhotoSize ladder)."""
        return self.send_message(
            chat_id,
            photo=photo_sizes(self.files, image),
            media_group_id=media_group_id,
            **self._caption(caption),
            **fields,
        )

    def send_album(
        self, chat_id: int, images: list[bytes], *, caption: str | None = None, **fields: Any
    ) -> list[dict[str, Any]]:
        """Several photos as one album: one update each, sharing a ``media_group_id``,
        the caption on the first (as Telegram clients send it)."""
        group = str(abs(hash(uuid.uuid4().hex)) % 10**18)
        return [
            self.send_photo(
                chat_id, image, caption=caption if n == 0 else None, media_group_id=group, **fields
            )
            for n, image in enumerate(images)
        ]

    def send_voice(
        self,
        chat_id: int,
        data: bytes,
        *,
        duration: int = 1,
        caption: str | None = None,
        size: int | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A voice note (OGG/Opus, ``voice/file_N.oga`` on the file server)."""
        stored = self.files.add(data, "voice", size=size)
        voice = self.files.object(stored, duration=duration, mime_type="audio/ogg")
        return self.send_message(chat_id, voice=voice, **self._caption(caption), **fields)

    def send_audio(
        self,
        chat_id: int,
        data: bytes,
        *,
        file_name: str = "song.mp3",
        mime_type: str = "audio/mpeg",
        duration: int = 1,
        caption: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A music or audio file."""
        ext = file_name.rsplit(".", 1)[-1] if "." in file_name else ""
        stored = self.files.add(data, "audio", extension=ext)
        audio = self.files.object(
            stored, duration=duration, mime_type=mime_type, file_name=file_name
        )
        return self.send_message(chat_id, audio=audio, **self._caption(caption), **fields)

    def send_video_note(
        self, chat_id: int, data: bytes, *, length: int = 240, duration: int = 1, **fields: Any
    ) -> dict[str, Any]:
        """A round video note (MP4; Telegram sends no mime_type for it)."""
        stored = self.files.add(data, "video_note")
        note = self.files.object(stored, length=length, duration=duration)
        return self.send_message(chat_id, video_note=note, **fields)

    def send_video(
        self,
        chat_id: int,
        data: bytes,
        *,
        width: int = 640,
        height: int = 360,
        duration: int = 1,
        caption: str | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """A video (MP4)."""
        stored = self.files.add(data, "video")
        video = self.files.object(
            stored, width=width, height=height, duration=duration, mime_type="video/mp4"
        )
        return self.send_message(chat_id, video=video, **self._caption(caption), **fields)

    def send_document(
        self,
        chat_id: int,
        data: bytes,
        *,
        file_name: str,
        mime_type: str | None = None,
        caption: str | None = None,
        size: int | None = None,
        chunked: bool = False,
        **fields: Any,
    ) -> dict[str, Any]:
        """A file sent as a document (also a photo sent "as a file")."""
        ext = file_name.rsplit(".", 1)[-1] if "." in file_name else ""
        stored = self.files.add(data, "document", extension=ext, size=size, chunked=chunked)
        document = self.files.object(stored, file_name=file_name, mime_type=mime_type)
        return self.send_message(chat_id, document=document, **self._caption(caption), **fields)
