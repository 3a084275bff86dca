"""Mutable world of the Telegram Bot API emulator: chats, messages, the update queue."""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from emulators.bot_api_support import ChatMessage

DEFAULT_GROUP_USER_ID = 1001
MEDIA_DEFAULTS: dict[str, dict[str, Any]] = {
    "sticker": {
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
    },
    "voice": {"duration": 1, "mime_type": "audio/ogg"},
    "audio": {"duration": 1},
    "video": {"width": 640, "height": 480, "duration": 1},
    "video_note": {"length": 240, "duration": 1},
    "animation": {"width": 320, "height": 240, "duration": 1},
    "document": {},
    "photo": {"width": 800, "height": 600},
}
UPDATE_KINDS = ("message", "edited_message", "callback_query")


@dataclass
class QueuedUpdate:
    """An update waiting to be fetched; ``forced`` ones survive one confirmation (redelivery)."""

    update_id: int
    kind: str
    update: dict[str, Any]
    forced: bool = False
    delivered: bool = False


class EmulatorState:
    """Everything the emulated Telegram server remembers."""

    def __init__(self, bot_id: int, bot_username: str) -> None:
        self.bot_user: dict[str, Any] = {
            "id": bot_id,
            "is_bot": True,
            "first_name": "Memory Test Bot",
            "username": bot_username,
        }
        self.chats: dict[int, dict[str, Any]] = {}
        self.messages: dict[int, dict[int, dict[str, Any]]] = {}
        self.bot_messages: dict[int, list[ChatMessage]] = {}
        self.deleted: set[tuple[int, int]] = set()
        self.last_message_id: dict[int, int] = {}
        self.next_update_id = 1
        self.queue: list[QueuedUpdate] = []
        self.history: dict[int, QueuedUpdate] = {}
        self.callback_queries: dict[str, bool] = {}
        self.drafts: dict[int, list[dict[str, Any]]] = {}
        self.topics: dict[int, set[int]] = {}  # forum topics (message_thread_id) per chat
        self.migrated: dict[int, int] = {}  # group upgraded to a supergroup: old id → new
        self.commands: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.webhook: dict[str, Any] = {"url": ""}
        self.allowed_updates: list[str] = []
        self.poll_generation = 0
        # Awaited with the ids a getUpdates confirms, before it is answered (tests look at the
        # bot's state at the moment Telegram forgets an update).
        self.on_confirm: list[Callable[[list[int]], Awaitable[None]]] = []
        self.active_polls = 0
        self.stopping = False
        self.event = asyncio.Event()

    # ------------------------------------------------------------------ change notification

    def notify(self) -> None:
        """Wake everything waiting for a state change (long polls, ``wait_for``)."""
        event, self.event = self.event, asyncio.Event()
        event.set()

    # ------------------------------------------------------------------ chats and messages

    def next_message_id(self, chat_id: int) -> int:
        """Allocate the next per-chat message id."""
        self.last_message_id[chat_id] = self.last_message_id.get(chat_id, 0) + 1
        return self.last_message_id[chat_id]

    def ensure_chat(
        self, chat_id: int, chat_type: str, title: str | None, user: dict[str, Any]
    ) -> dict[str, Any]:
        """Create (or refresh) the chat object for an injected update."""
        if chat_type == "private":
            chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
            if "username" in user:
                chat["username"] = user["username"]
        else:
            chat = {"id": chat_id, "type": chat_type, "title": title or "Test group"}
            if chat_id in self.topics:
                chat["is_forum"] = True
        self.chats[chat_id] = chat
        self.messages.setdefault(chat_id, {})
        return chat

    def find_message(self, chat_id: int, message_id: int) -> dict[str, Any] | None:
        """A live (not deleted) message of the chat, or None."""
        if (chat_id, message_id) in self.deleted:
            return None
        return self.messages.get(chat_id, {}).get(message_id)

    def find_bot_message(self, chat_id: int, message_id: int) -> ChatMessage | None:
        """The bot's own live message, or None."""
        for message in self.bot_messages.get(chat_id, []):
            if message.message_id == message_id and not message.deleted:
                return message
        return None

    def store_bot_message(self, message: dict[str, Any], record: ChatMessage) -> None:
        """Remember a message the bot sent."""
        self.messages[record.chat_id][record.message_id] = message
        self.bot_messages.setdefault(record.chat_id, []).append(record)

    def build_message(
        self, chat_id: int, sender: dict[str, Any], reply_to: int | None, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """A Message dict with id, date, chat, sender, optional reply and extra fields."""
        message: dict[str, Any] = {
            "message_id": self.next_message_id(chat_id),
            "from": sender,
            "chat": self.chats[chat_id],
            "date": int(time.time()),
        }
        if reply_to is not None:
            message["reply_to_message"] = self.reply_copy(chat_id, reply_to)
        message.update({k: v for k, v in fields.items() if v is not None})
        complete_media(message)
        return message

    def reply_copy(self, chat_id: int, message_id: int) -> dict[str, Any]:
        """The replied-to message as embedded in a reply (no deeper nesting)."""
        original = self.messages.get(chat_id, {}).get(message_id)
        if original is None:
            raise KeyError(f"no message {message_id} in chat {chat_id}")
        embedded = copy.deepcopy(original)
        embedded.pop("reply_to_message", None)
        return embedded

    # ------------------------------------------------------------------ updates

    def queue_update(self, kind: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Queue a new update of ``kind`` and wake pollers."""
        update_id = self.next_update_id
        self.next_update_id += 1
        update = {"update_id": update_id, kind: copy.deepcopy(payload)}
        entry = QueuedUpdate(update_id, kind, update)
        self.queue.append(entry)
        self.history[update_id] = entry
        self.notify()
        return update

    def redeliver(self, update_id: int) -> None:
        """Put an already seen update back in the queue under the same id."""
        original = self.history.get(update_id)
        if original is None:
            raise KeyError(f"unknown update_id {update_id}")
        self.queue = [e for e in self.queue if e.update_id != update_id]
        self.queue.append(QueuedUpdate(update_id, original.kind, original.update, forced=True))
        self.queue.sort(key=lambda e: e.update_id)
        self.notify()

    def confirm(self, offset: int) -> list[int]:
        """Forget updates below ``offset`` (negative: keep only the last ``-offset``); return
        the ids of the delivered ones forgotten (Telegram counts them handled now)."""
        before = self.queue
        if offset < 0:
            self.queue = self.queue[offset:]
        elif offset > 0:
            self.queue = [
                e for e in self.queue if e.update_id >= offset or (e.forced and not e.delivered)
            ]
        kept = {id(e) for e in self.queue}
        return [e.update_id for e in before if id(e) not in kept and e.delivered]

    def take(self, offset: int, limit: int) -> list[dict[str, Any]]:
        """Queued updates at or after ``offset`` (plus forced redeliveries), marking them sent."""
        if self.allowed_updates:
            self.queue = [e for e in self.queue if e.kind in self.allowed_updates]
        ready = [e for e in self.queue if e.update_id >= offset or e.forced][:limit]
        for entry in ready:
            entry.delivered = True
        return [copy.deepcopy(e.update) for e in ready]

    def clear_queue(self) -> None:
        """Drop every pending update (``drop_pending_updates``)."""
        self.queue.clear()


def complete_media(message: dict[str, Any]) -> None:
    """Fill the fields Telegram always sends for media objects a test gave only partially."""
    for kind, defaults in MEDIA_DEFAULTS.items():
        value = message.get(kind)
        items = value if isinstance(value, list) else [value]
        for n, item in enumerate(i for i in items if isinstance(i, dict)):
            item.setdefault("file_id", f"{kind}-{message['message_id']}-{n}")
            item.setdefault("file_unique_id", f"u-{item['file_id']}")
            for key, default in defaults.items():
                item.setdefault(key, default)
