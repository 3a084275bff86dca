"""The one entry point of bot/media: an incoming attachment in, `bot.parts` parts out.

Downloads run on the event loop (they only wait on sockets); decoding and resizing images run
in worker threads (Pillow lets go of the GIL), parsing PDF and DOCX in worker processes
(bot.media.workers: pypdf is pure Python), each at most `MediaOptions.concurrency` at once per
process, so other chats keep streaming while a large PDF is read.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from bot.media import documents
from bot.media.audio import Transcriber
from bot.media.download import TelegramFiles
from bot.media.images import ProcessedImage, looks_like_image, process_image
from bot.media.options import MediaOptions, ModelTarget
from bot.media.types import (
    AUDIO_TOO_BIG,
    NOT_CONFIGURED,
    SCANNED,
    UNSUPPORTED,
    Attachment,
    DataValue,
    MediaError,
    Note,
    Prepared,
    TextCounter,
    TranscriptionError,
)
from bot.media.workers import ParsePool
from bot.parts import AudioTranscriptPart, DocumentTextPart, FileRef, ImagePart, Part, TextPart

logger = logging.getLogger(__name__)

T = TypeVar("T")
SPOKEN = ("voice", "video_note")  # the user speaking: the transcript is their message
HEARD = ("audio", "video")  # a recording: the transcript is labelled with its file
# Telegram sends no mime_type for video notes; voice is always OGG/Opus.
DEFAULT_MIME = {"voice": "audio/ogg", "video_note": "video/mp4", "video": "video/mp4"}


class MediaProcessor:
    """Turns attachments into parts; one per process, shared by every chat."""

    def __init__(
        self, files: TelegramFiles, transcriber: Transcriber, options: MediaOptions
    ) -> None:
        self.files = files
        self.transcriber = transcriber
        self.options = options
        self.transcribers: dict[str, Transcriber] = {}  # profiles with their own settings
        self._heavy = asyncio.Semaphore(options.concurrency)
        self.parsing = ParsePool(options.concurrency, timeout=options.parse_timeout)

    async def aclose(self) -> None:
        """Stop the parsing workers."""
        await self.parsing.aclose()

    def transcriber_for(self, profile: str) -> Transcriber:
        """The transcriber of a model profile (the default one unless it has its own)."""
        return self.transcribers.get(profile, self.transcriber)

    async def run_heavy(self, work: Callable[..., T], *args: object) -> T:
        """Run CPU-bound `work(*args)` in a worker thread, bounded per process."""
        async with self._heavy:
            return await asyncio.to_thread(work, *args)

    async def prepare(
        self,
        attachment: Attachment,
        target: ModelTarget,
        counter: TextCounter,
        *,
        budget: int | None = None,
        transcriber: Transcriber | None = None,
    ) -> Prepared:
        """The parts of one attachment (its caption last); MediaError when it is unusable.

        `budget` caps a document's text in tokens (default DOCUMENT_MAX_TOKENS);
        `transcriber` replaces the default one (a profile with its own transcription server).
        """
        if attachment.kind == "unsupported":
            raise MediaError(UNSUPPORTED, kind=attachment.source or "unknown")
        if attachment.kind in ("photo", "image"):
            parts, notes = await self._image(attachment, target, counter)
        elif attachment.kind in SPOKEN + HEARD:
            parts, notes = await self._audio(attachment, counter, transcriber or self.transcriber)
        else:
            limit = min(
                budget or self.options.document_max_tokens, self.options.document_max_tokens
            )
            parts, notes = await self._document(attachment, target, counter, limit)
        if attachment.caption:
            parts.append(_caption(attachment.caption, counter))
        return Prepared(tuple(parts), tuple(notes))

    async def prepare_album(
        self,
        attachments: Sequence[Attachment],
        target: ModelTarget,
        counter: TextCounter,
        *,
        budget: int | None = None,
        transcriber: Transcriber | None = None,
    ) -> Prepared:
        """An album (one `media_group_id`) as one message: every item, then the caption(s).

        An item that fails is left out with a "skipped" note; if all fail, the first error.
        `budget` is shared by the album's documents.
        """
        share = None if budget is None else max(1, budget // max(1, len(attachments)))
        parts: list[Part] = []
        captions: list[Part] = []
        notes: list[Note] = []
        errors: list[MediaError] = []
        for attachment in attachments:
            try:
                prepared = await self.prepare(
                    attachment, target, counter, budget=share, transcriber=transcriber
                )
            except MediaError as exc:
                errors.append(exc)
                notes.append(Note("skipped", {"code": exc.code}))
                continue
            for part in prepared.parts:  # text parts are the captions
                (captions if isinstance(part, TextPart) else parts).append(part)
            notes.extend(n for n in prepared.notes if n not in notes)
        if not parts and errors:
            raise errors[0]
        return Prepared(tuple(parts + captions), tuple(notes))

    # --- per kind ------------------------------------------------------------------------------

    async def _image(
        self,
        attachment: Attachment,
        target: ModelTarget,
        counter: TextCounter,
        raw: bytes | None = None,
    ) -> tuple[list[Part], list[Note]]:
        if raw is None:
            raw = await self.files.download(attachment)
        image = await self.run_heavy(self._process_image, raw)
        part = self.image_part(image, attachment, counter)
        notes = [] if target.vision else [Note("no_vision", {"model": target.model})]
        return [part], notes

    def _process_image(self, raw: bytes) -> ProcessedImage:
        options = self.options
        return process_image(
            raw,
            max_side=options.image_max_side,
            max_pixels=options.max_pixels,
            quality=options.image_quality,
        )

    def image_part(
        self,
        image: ProcessedImage,
        attachment: Attachment,
        counter: TextCounter,
        *,
        label: str = "",
    ) -> ImagePart:
        """The stored part of a processed image, costed as an image for the counter's model
        (the prompt sends its text form instead to a model that cannot see it)."""
        name = label or attachment.file_name or "photo"
        part = ImagePart(
            image.data,
            image.mime,
            f"{name}, {image.width}×{image.height}",
            self.options.image_detail,
            image.width,
            image.height,
            _file(attachment),
        )
        return dataclasses.replace(part, tokens=counter.count_part(part))

    async def _audio(
        self, attachment: Attachment, counter: TextCounter, transcriber: Transcriber
    ) -> tuple[list[Part], list[Note]]:
        if not transcriber.configured:
            raise TranscriptionError(NOT_CONFIGURED)  # before downloading anything
        limit = transcriber.max_bytes
        if attachment.size is not None and attachment.size > limit:
            raise TranscriptionError(AUDIO_TOO_BIG, size=attachment.size, limit=limit)
        raw = await self.files.download(attachment)
        mime = attachment.mime or DEFAULT_MIME.get(attachment.kind)
        transcript = await transcriber.transcribe(
            raw, file_name=attachment.file_name or attachment.kind, mime=mime
        )
        if attachment.kind in HEARD:
            text = f"[Transcript of {attachment.file_name or attachment.kind}]\n{transcript}"
        else:
            text = transcript
        part = AudioTranscriptPart(text, mime or "", attachment.duration, _file(attachment))
        notes = [Note("transcript", {"text": transcript})] if self.options.show_transcript else []
        return [dataclasses.replace(part, tokens=counter.count_part(part))], notes

    async def _document(
        self, attachment: Attachment, target: ModelTarget, counter: TextCounter, budget: int
    ) -> tuple[list[Part], list[Note]]:
        raw = await self.files.download(attachment)
        if looks_like_image(raw):  # a photo sent as a file with a generic MIME type
            return await self._image(attachment, target, counter, raw)
        kind = documents.detect_kind(raw, attachment.mime)
        if kind is None:
            raise documents.unsupported(attachment.mime)
        name = attachment.file_name or "document"
        room = max(1, budget - counter.count_part(DocumentTextPart("", name)))  # its header
        try:
            read = await self._read(raw, kind, room, counter)
        except MediaError as exc:
            if exc.code == SCANNED and target.vision:
                return await self._scanned_pages(raw, attachment, target, counter, exc)
            raise
        text = read.text
        notes: list[Note] = []
        if read.truncated:
            values: dict[str, DataValue] = {"percent": read.kept_percent, "tokens": read.tokens}
            if read.pages is not None:
                values.update(pages=read.pages, pages_read=read.pages_read)
            text += f"\n[… cut to fit: about {read.kept_percent}% of the document was kept]"
            notes.append(Note("truncated", values))
        if not attachment.caption:
            notes.append(Note("no_caption"))
        part = DocumentTextPart(text, name, attachment.mime or "", _file(attachment))
        return [dataclasses.replace(part, tokens=counter.count_part(part))], notes

    async def _read(
        self, raw: bytes, kind: documents.DocumentKind, room: int, counter: TextCounter
    ) -> documents.DocumentText:
        """The document's text within `room` tokens: parsed in a worker process (PDF, DOCX)
        or thread (plain text), then cut to the budget in a thread."""
        options = self.options
        load = functools.partial(
            documents.load,
            raw,
            kind,
            max_chars=room * documents.CHARS_PER_TOKEN_READ,
            max_pages=options.pdf_max_pages,
            zip_max_bytes=options.zip_max_bytes,
        )
        loaded = await (self.run_heavy(load) if kind == "text" else self.parsing.run(load))
        return await self.run_heavy(documents.fit, loaded, room, counter)

    async def _scanned_pages(
        self,
        raw: bytes,
        attachment: Attachment,
        target: ModelTarget,
        counter: TextCounter,
        error: MediaError,
    ) -> tuple[list[Part], list[Note]]:
        """A scanned PDF on a vision model: its first pages' scans as images."""
        scans = await self.parsing.run(documents.page_scans, raw, SCANNED_PAGES)
        parts: list[Part] = []
        for number, scan in scans:
            try:
                image = await self.run_heavy(self._process_image, scan)
            except MediaError:
                continue
            label = f"{attachment.file_name or 'document'}, page {number}"
            parts.append(self.image_part(image, attachment, counter, label=label))
        if not parts:
            raise error
        notes = [Note("scanned_as_images", {"pages": len(parts), **error.values})]
        if not attachment.caption:
            notes.append(Note("no_caption"))
        return parts, notes


SCANNED_PAGES = 3  # pages of a scanned PDF sent as images to a vision model


def _file(attachment: Attachment) -> FileRef:
    return FileRef(attachment.file_id, attachment.file_unique_id, attachment.size)


def _caption(caption: str, counter: TextCounter) -> TextPart:
    return TextPart(caption, counter.count_text(caption))
