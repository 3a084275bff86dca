"""Photos, albums, voice, audio, video notes, videos and documents as conversation turns.

A message with an attachment is prepared by bot/media for the chat's model (inside the chat's
ordering, the heavy work in worker threads), then answered as one turn whose content is the
prepared parts. An album (one `media_group_id`, one update per item) is one turn: its first
update waits in the chat's line as usual, the others join it on arrival (they skip the line),
and it is prepared once the album has been quiet for `ALBUM_QUIET_SECONDS`. The update log
(`AlbumLog`) adds the album's items this process did not see arrive: those another replica
took, or, after a kill, those a previous run had taken. The later items stay pending in the
log until the album's turn is over, so a kill before it replays the whole album. A file the
bot cannot use gets one line saying why, and the conversation goes on untouched.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from telegram import Bot, Message, MessageEntity, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.ext import ContextTypes

from bot.conversation import Incoming
from bot.llm.tokens import TokenCounter
from bot.media import (
    Attachment,
    MediaError,
    MediaProcessor,
    ModelTarget,
    Prepared,
    TranscriptionError,
    attachment_from_message,
)
from bot.media import types as codes
from bot.media.options import MB
from bot.notices import Notice
from bot.parts import text_form
from bot.turn import Outcome, TurnRunner
from bot.values import ChatInfo, UserInfo
from bot.wording import render

logger = logging.getLogger(__name__)

MEDIA_SOURCES = ("photo", "voice", "audio", "video_note", "video", "document")
KIND_NAMES = {"animation": "GIF", "paid_media": "paid media"}
ALBUM_QUIET_SECONDS = 0.8  # Telegram delivers an album's updates together; wait this long
STALE_ALBUM_SECONDS = 3600.0  # longer than any wait in a chat's line
DOCUMENT_SHARE = 0.75  # of the prompt budget, at most, for one document's text
QUOTE_CHARS = 3500  # a longer transcript is quoted in part (the model gets all of it)
SHOWN_NOTES = ("no_vision", "truncated", "skipped", "scanned_as_images")

Context = ContextTypes.DEFAULT_TYPE
RunTurn = Callable[[Update, Context, int, Callable[..., Awaitable[Outcome]]], Awaitable[None]]


class AlbumLog(Protocol):
    """The shared update log, as albums need it (bot.runtime.update_gate.UpdateGate)."""

    async def album_items(self, chat_id: int, media_group_id: str, bot: Bot) -> list[Update]: ...

    async def done(self, update_id: int) -> None: ...


@dataclass
class _Album:
    updates: list[Update]
    last_arrival: float
    taken: bool = False


def _message(update: Update) -> Message:
    message = update.effective_message
    assert message is not None
    return message


@dataclass
class Albums:
    """Albums being collected, by (chat id, media_group_id)."""

    open: dict[tuple[int, str], _Album] = field(default_factory=dict)

    def joins(self, update: Update) -> bool:
        """Whether `update` is a later item of an album already waiting (it skips the line);
        the first item opens the album and waits in line as usual."""
        message = update.message
        if message is None or message.media_group_id is None:
            return False
        key = (message.chat_id, message.media_group_id)
        now = asyncio.get_running_loop().time()
        album = self.open.get(key)
        if album is None or album.taken:
            self._forget_stale(now)
            self.open[key] = _Album([update], now)
            return False
        album.updates.append(update)
        album.last_arrival = now
        return True

    def _forget_stale(self, now: float) -> None:
        """Drop albums whose first item was never handled (a full queue answered it busy)."""
        for key, album in list(self.open.items()):
            if now - album.last_arrival > STALE_ALBUM_SECONDS:
                del self.open[key]

    def discard(self, update: Update) -> list[Update]:
        """Forget the album `update` opened (one the bot will not answer): its later items."""
        message = update.message
        if message is None or message.media_group_id is None:
            return []
        key = (message.chat_id, message.media_group_id)
        album = self.open.get(key)
        if album is None or album.updates[0] is not update:
            return []
        del self.open[key]
        return album.updates[1:]

    async def gather(self, update: Update) -> list[Update] | None:
        """The album `update` opened, once quiet; None when it is a later item."""
        message = _message(update)
        key = (message.chat_id, message.media_group_id or "")
        album = self.open.get(key)
        if album is None:  # not seen arriving (another replica's, a replayed one): the update
            await asyncio.sleep(ALBUM_QUIET_SECONDS)  # log has the rest, once they are in
            return [update]
        if album.updates[0] is not update:
            return None
        loop = asyncio.get_running_loop()
        # A debounce: each arrival moves the deadline, so an Event would not say more.
        while (wait := album.last_arrival + ALBUM_QUIET_SECONDS - loop.time()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(wait)
        album.taken = True
        del self.open[key]
        return album.updates


class AttachmentHandler:
    """Turns messages with attachments into turns; one per application."""

    def __init__(
        self,
        runner: TurnRunner,
        media: MediaProcessor,
        run_turn: RunTurn,
        log: AlbumLog | None = None,
    ) -> None:
        self._runner = runner
        self._media = media
        self._run_turn = run_turn
        self._log = log
        self.albums = Albums()

    async def handle(self, update: Update, context: Context, user: UserInfo) -> None:
        """Answer a message with an attachment (the caller checked it is addressed)."""
        message = _message(update)
        updates = [update]
        if message.media_group_id is not None:
            found = await self.albums.gather(update)
            if found is None:
                return  # a later item: the first one answers for the album
            updates = await self._with_logged(found, message, context.bot)
        others = [u for u in updates if u is not update]
        try:
            await self._answer(update, context, user, [_message(u) for u in updates])
        except Exception:
            await self._done(others)  # as the first item is: it is marked done all the same
            raise
        # Answered or refused: the other items with it. Cancelled (a shutdown past its grace),
        # all stay pending, and the next start answers the album whole.
        await self._done(others)

    async def ignore(self, update: Update) -> None:
        """Drop the album `update` opened (not addressed to the bot, or answered busy)."""
        await self._done(self.albums.discard(update))

    async def _with_logged(self, found: list[Update], first: Message, bot: Bot) -> list[Update]:
        """The album's items seen here and those only the update log has, in message order."""
        if self._log is not None and first.media_group_id is not None:
            seen = {u.update_id for u in found}
            logged = await self._log.album_items(first.chat_id, first.media_group_id, bot)
            found = found + [u for u in logged if u.update_id not in seen]
        return sorted(found, key=lambda u: _message(u).message_id)

    async def _done(self, updates: Iterable[Update]) -> None:
        if self._log is not None:
            for later in updates:
                await self._log.done(later.update_id)

    async def _answer(
        self, update: Update, context: Context, user: UserInfo, messages: list[Message]
    ) -> None:
        message = _message(update)
        attachments = [self._attachment(m, context.bot.username) for m in messages]
        first = attachments[0]
        if first is None or first.kind == "unsupported":
            await message.reply_text(render(_refusal(first)))
            return
        chat = ChatInfo(message.chat.id, message.chat.type, message.chat.title)
        config = await self._runner.conversations.config_for(chat)
        target = ModelTarget(config.model, config.vision)
        counter = TokenCounter(config.model)
        usable = [a for a in attachments if a is not None]
        budget = max(1, int(self._runner.recall.budget(config) * DOCUMENT_SHARE))
        transcriber = self._media.transcriber_for(config.profile)
        try:
            if len(usable) > 1:
                prepared = await self._media.prepare_album(
                    usable, target, counter, budget=budget, transcriber=transcriber
                )
            else:
                prepared = await self._media.prepare(
                    usable[0], target, counter, budget=budget, transcriber=transcriber
                )
        except MediaError as exc:
            logger.info("chat %s: attachment refused: %s", chat.id, exc.code)
            await message.reply_text(render(self.notice(exc)))
            return
        thread = message.message_thread_id if message.is_topic_message else None
        incoming = Incoming(
            chat, user, text_form(prepared.parts), message.message_id, thread, prepared.parts
        )
        if any(n.code == "no_caption" for n in prepared.notes):
            if await self._runner.conversations.keep(incoming):
                name = usable[0].file_name or "the file"
                await message.reply_text(render(Notice("no_caption", {"name": name})))
            return
        await self._show_notes(message, prepared)
        await self._run_turn(
            update,
            context,
            message.message_id,
            lambda sink, control: self._runner.run(incoming, sink, control),
        )

    @staticmethod
    def _attachment(message: Message, username: str) -> Attachment | None:
        found = attachment_from_message(message.to_dict())
        if found is None or not found.caption or message.chat.type == ChatType.PRIVATE:
            return found
        caption = re.sub(rf"@{re.escape(username)}\b", "", found.caption, flags=re.IGNORECASE)
        return dataclasses.replace(found, caption=caption.strip())

    def notice(self, error: MediaError) -> Notice:
        """The one line for an attachment the bot cannot use."""
        values = dict(error.values)
        if error.code == codes.TOO_BIG:
            return Notice(error.code, {"limit": _size(self._media.files.max_bytes)})
        if error.code == codes.AUDIO_TOO_BIG:
            limit = self._media.options.transcription_max_bytes
            return Notice(error.code, {"limit": _size(limit)})
        if error.code == codes.UNSUPPORTED and values.get("kind") in ("document", "image"):
            return Notice("unsupported_file", {"mime": str(values.get("mime") or "unknown")})
        if error.code == codes.EMPTY and isinstance(error, TranscriptionError):
            return Notice("empty_transcript")
        if error.code == codes.SCANNED:
            return Notice(error.code, {"pages": values.get("pages")})
        if error.code == codes.TOO_SLOW:
            return Notice(error.code, {"seconds": values.get("seconds")})
        if error.code == codes.UNSUPPORTED:
            return Notice(error.code, {"kind": str(values.get("kind") or "these")})
        return Notice(error.code)

    async def _show_notes(self, message: Message, prepared: Prepared) -> None:
        """The transcript, quoted, and what the user should know, above the answer."""
        lines = [render(n) for n in prepared.notes if n.code in SHOWN_NOTES]
        quoted = [str(n.values.get("text", "")) for n in prepared.notes if n.code == "transcript"]
        if not lines and not quoted:
            return
        quote = "\n".join(q for q in quoted if q)[:QUOTE_CHARS]
        text = "\n\n".join(([quote] if quote else []) + lines)
        entities = []
        if quote:
            length = len(quote.encode("utf-16-le")) // 2
            entities.append(MessageEntity(MessageEntityType.BLOCKQUOTE, 0, length))
        await message.reply_text(text[:4096], entities=entities or None)


def _refusal(attachment: Attachment | None) -> Notice:
    """Why a message with nothing the bot can read is not answered."""
    if attachment is not None and attachment.source in MEDIA_SOURCES:
        return Notice("no_file")  # a media field without a file id
    kind = attachment.source if attachment is not None else "these"
    return Notice(codes.UNSUPPORTED, {"kind": KIND_NAMES.get(kind, kind)})


def _size(count: int) -> str:
    return f"{count // MB} MB" if count >= MB else f"{max(1, count // 1024)} KB"
