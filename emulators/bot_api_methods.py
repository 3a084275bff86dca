"""Bot API method handlers of the emulator, each validating like Telegram does."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from emulators.bot_api_state import EmulatorState
from emulators.bot_api_support import (
    ApiError,
    ChatMessage,
    FloodLimiter,
    UploadedFile,
    bad_request,
)
from emulators.bot_api_text import (
    EntityError,
    parse_text,
    u16len,
    validate_entities,
    words,
)

Params = dict[str, Any]
Handler = Callable[[Params], Awaitable[Any]]
PARSE_MODES = ("", "html", "markdownv2", "markdown")
CHAT_ACTIONS = words(
    "typing upload_photo record_video upload_video record_voice upload_voice "
    "upload_document choose_sticker find_location record_video_note upload_video_note"
)
NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
CONFLICT_POLL = (
    "Conflict: terminated by other getUpdates request; make sure that only one bot instance "
    "is running"
)
CONFLICT_WEBHOOK = (
    "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete "
    "the webhook first"
)


class BotMethods:
    """The served Bot API methods, keyed by lower-case name."""

    def __init__(self, state: EmulatorState, limiter: FloodLimiter) -> None:
        self.state = state
        self.limiter = limiter
        self.table: dict[str, tuple[str, Handler]] = {}
        for name in (
            "getMe",
            "getUpdates",
            "setWebhook",
            "deleteWebhook",
            "getWebhookInfo",
            "sendMessage",
            "editMessageText",
            "sendMessageDraft",
            "sendChatAction",
            "deleteMessage",
            "setMyCommands",
            "deleteMyCommands",
            "getMyCommands",
            "answerCallbackQuery",
            "sendDocument",
            "sendPhoto",
            "logOut",
            "close",
        ):
            self.table[name.lower()] = (name, getattr(self, f"m_{name}"))

    # ------------------------------------------------------------------ shared validation

    def _chat(self, params: Params) -> dict[str, Any]:
        chat_id = params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise bad_request("chat_id is empty")
        chat = self.state.chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise bad_request("chat not found")
        if chat_id in self.state.migrated:  # PTB raises ChatMigrated(new_chat_id)
            raise ApiError(
                "Bad Request: group chat was upgraded to a supergroup chat",
                migrate_to_chat_id=self.state.migrated[chat_id],
            )
        return chat

    def _flood(self, chat: dict[str, Any]) -> None:
        self.limiter.check(chat["id"], chat["type"] == "private")

    @staticmethod
    def _text(
        params: Params, key: str, entities_key: str, limit: int, *, required: bool = True
    ) -> tuple[str, list[dict[str, Any]]]:
        raw = params.get(key)
        raw = "" if raw is None else str(raw)
        mode = str(params.get("parse_mode") or "").strip().lower()
        try:
            if params.get(entities_key) is not None:
                text, entities = raw, validate_entities(raw, params[entities_key])
            elif mode not in PARSE_MODES:
                raise bad_request("unsupported parse_mode")
            else:
                text, entities = parse_text(raw, mode)
        except EntityError as exc:
            raise bad_request(f"can't parse entities: {exc}") from exc
        if required and not text.strip():
            raise bad_request("message text is empty")
        if u16len(text) > limit:
            raise bad_request("message is too long" if required else "message caption is too long")
        return text, entities

    def _reply_to(self, chat_id: int, params: Params) -> int | None:
        reply = params.get("reply_parameters")
        if isinstance(reply, dict):
            target, allow = reply.get("message_id"), bool(reply.get("allow_sending_without_reply"))
        else:
            target = params.get("reply_to_message_id")
            allow = bool(params.get("allow_sending_without_reply"))
        if target is None:
            return None
        if isinstance(target, int) and self.state.find_message(chat_id, target) is not None:
            return target
        if allow:
            return None
        raise bad_request("message to be replied not found")

    def _thread(self, chat: dict[str, Any], params: Params) -> int | None:
        """The forum topic to post in; Telegram refuses a topic that does not exist."""
        thread = params.get("message_thread_id")
        if thread is None:
            return None
        if not isinstance(thread, int) or thread not in self.state.topics.get(chat["id"], ()):
            raise bad_request("message thread not found")
        return thread

    @staticmethod
    def _markup(params: Params) -> dict[str, Any] | None:
        markup = params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            raise bad_request("can't parse reply keyboard markup JSON object")
        rows = markup.get("inline_keyboard")
        if rows is None:
            return None
        if not isinstance(rows, list) or not all(isinstance(r, list) for r in rows):
            raise bad_request(
                'field "inline_keyboard" of the InlineKeyboardMarkup must be an Array'
            )
        for button in (b for row in rows for b in row):
            if not isinstance(button, dict) or not button.get("text"):
                raise bad_request("can't parse inline keyboard button: Text buttons are unallowed")
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode()) <= 64:
                raise bad_request("BUTTON_DATA_INVALID")
        return copy.deepcopy(markup)

    def _send(
        self, chat: dict[str, Any], params: Params, fields: dict[str, Any], record: ChatMessage
    ) -> dict[str, Any]:
        reply_to = self._reply_to(chat["id"], params)
        markup = self._markup(params)
        thread = self._thread(chat, params)
        self._flood(chat)
        if thread is not None:
            fields = {**fields, "message_thread_id": thread, "is_topic_message": True}
        message = self.state.build_message(
            chat["id"], self.state.bot_user, reply_to, {**fields, "reply_markup": markup}
        )
        record.message_id, record.reply_to_message_id = message["message_id"], reply_to
        record.message_thread_id = thread
        record.reply_markup = markup
        self.state.store_bot_message(message, record)
        return message

    # ------------------------------------------------------------------ bot identity

    async def m_getMe(self, params: Params) -> Any:
        return {
            **self.state.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def m_logOut(self, params: Params) -> Any:
        return True

    async def m_close(self, params: Params) -> Any:
        return True

    # ------------------------------------------------------------------ updates and webhooks

    async def m_getUpdates(self, params: Params) -> Any:
        state = self.state
        if state.webhook["url"]:
            raise ApiError(CONFLICT_WEBHOOK, 409)
        offset = params.get("offset") or 0
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list):
            state.allowed_updates = [str(kind) for kind in allowed]
        state.poll_generation += 1
        generation = state.poll_generation
        if state.active_polls:
            state.notify()  # the earlier long poll is cut short now: answered 409
        if confirmed := state.confirm(int(offset)):
            for hook in state.on_confirm:
                await hook(confirmed)
        state.active_polls += 1
        try:
            return await self._poll(generation, int(offset), limit, timeout)
        finally:
            state.active_polls -= 1
            state.notify()

    async def _poll(self, generation: int, offset: int, limit: int, wait: float) -> Any:
        state = self.state
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            if generation != state.poll_generation:
                raise ApiError(CONFLICT_POLL, 409)
            updates = state.take(offset, limit)
            remaining = deadline - asyncio.get_running_loop().time()
            if updates or state.stopping or remaining <= 0:
                return updates
            event = state.event
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), remaining)

    async def m_setWebhook(self, params: Params) -> Any:
        url = str(params.get("url") or "")
        # Plain HTTP is accepted for loopback only, so tests can serve the bot without TLS.
        loopback = url.lower().startswith(("http://127.0.0.1", "http://localhost"))
        if url and not url.lower().startswith("https://") and not loopback:
            raise bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if params.get("drop_pending_updates"):
            self.state.clear_queue()
        self.state.webhook = {
            "url": url,
            "secret_token": params.get("secret_token"),
            "max_connections": params.get("max_connections") or 40,
            "allowed_updates": params.get("allowed_updates"),
        }
        self.state.poll_generation += 1
        if self.state.active_polls:
            self.state.notify()
        return True

    async def m_deleteWebhook(self, params: Params) -> Any:
        if params.get("drop_pending_updates"):
            self.state.clear_queue()
        self.state.webhook = {"url": ""}
        return True

    async def m_getWebhookInfo(self, params: Params) -> Any:
        hook = self.state.webhook
        info: dict[str, Any] = {
            "url": hook["url"],
            "has_custom_certificate": False,
            "pending_update_count": len(self.state.queue),
        }
        if hook["url"]:
            info["max_connections"] = hook["max_connections"]
            if hook.get("allowed_updates"):
                info["allowed_updates"] = hook["allowed_updates"]
        return info

    # ------------------------------------------------------------------ messages

    async def m_sendMessage(self, params: Params) -> Any:
        chat = self._chat(params)
        text, entities = self._text(params, "text", "entities", 4096)
        record = ChatMessage(0, chat["id"], text, entities, True, [text])
        return self._send(chat, params, {"text": text, "entities": entities or None}, record)

    async def m_editMessageText(self, params: Params) -> Any:
        if params.get("inline_message_id") is not None and params.get("chat_id") is None:
            raise bad_request("message to edit not found")
        chat = self._chat(params)
        message_id = params.get("message_id")
        record = (
            self.state.find_bot_message(chat["id"], message_id)
            if isinstance(message_id, int)
            else None
        )
        if record is None:
            raise bad_request("message to edit not found")
        message = self.state.messages[chat["id"]][record.message_id]
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        text, entities = self._text(params, "text", "entities", 4096)
        markup = self._markup(params)
        if (text, entities, markup) == (record.text, record.entities, record.reply_markup):
            raise bad_request(NOT_MODIFIED)
        self._flood(chat)
        record.text, record.entities, record.reply_markup = text, entities, markup
        record.edits.append(text)
        message.update({"text": text, "edit_date": int(time.time())})
        for key, value in (("entities", entities), ("reply_markup", markup)):
            if value:
                message[key] = value
            else:
                message.pop(key, None)
        return copy.deepcopy(message)

    async def m_sendMessageDraft(self, params: Params) -> Any:
        chat_id = params.get("chat_id")
        if isinstance(chat_id, int) and chat_id <= 0:
            raise bad_request("sendMessageDraft can be used only in private chats")
        chat = self._chat(params)
        if chat["type"] != "private":
            raise bad_request("sendMessageDraft can be used only in private chats")
        draft_id = params.get("draft_id")
        if not isinstance(draft_id, int) or draft_id == 0:
            raise bad_request("draft_id must be non-zero")
        text, entities = self._text(params, "text", "entities", 4096)
        self._flood(chat)
        self.state.drafts.setdefault(chat["id"], []).append(
            {
                "chat_id": chat["id"],
                "draft_id": draft_id,
                "text": text,
                "entities": entities,
                "message_thread_id": params.get("message_thread_id"),
                "at": time.monotonic(),
            }
        )
        return True

    async def m_sendChatAction(self, params: Params) -> Any:
        self._thread(self._chat(params), params)
        if params.get("action") not in CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    async def m_deleteMessage(self, params: Params) -> Any:
        chat = self._chat(params)
        message_id = params.get("message_id")
        if not isinstance(message_id, int) or not self.state.find_message(chat["id"], message_id):
            raise bad_request("message to delete not found")
        self.state.deleted.add((chat["id"], message_id))
        record = self.state.find_bot_message(chat["id"], message_id)
        if record is not None:
            record.deleted = True
        return True

    async def m_sendDocument(self, params: Params) -> Any:
        return self._send_file(params, "document")

    async def m_sendPhoto(self, params: Params) -> Any:
        return self._send_file(params, "photo")

    def _send_file(self, params: Params, kind: str) -> dict[str, Any]:
        chat = self._chat(params)
        upload = params.get(kind)
        if upload is None or upload == "":
            raise bad_request(f"there is no {kind} in the request")
        caption, entities = self._text(params, "caption", "caption_entities", 1024, required=False)
        data = upload.data if isinstance(upload, UploadedFile) else None
        name = upload.filename if isinstance(upload, UploadedFile) else None
        serial = self.state.last_message_id.get(chat["id"], 0) + 1
        info: dict[str, Any] = {
            "file_id": str(upload) if isinstance(upload, str) else f"FILE{chat['id']}_{serial}",
            "file_unique_id": f"U{abs(chat['id'])}_{serial}",
            "file_size": len(data) if data is not None else 0,
        }
        if kind == "photo":
            media: Any = [{**info, "width": 800, "height": 600}]
        else:
            media = {**info, "file_name": name or "file", "mime_type": _mime(upload)}
        record = ChatMessage(
            0, chat["id"], caption, entities, True, [caption], document=data, file_name=name
        )
        fields = {kind: media, "caption": caption or None, "caption_entities": entities or None}
        return self._send(chat, params, fields, record)

    # ------------------------------------------------------------------ commands and callbacks

    @staticmethod
    def _commands_key(params: Params) -> tuple[str, str]:
        scope = params.get("scope") or {"type": "default"}
        return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")

    async def m_setMyCommands(self, params: Params) -> Any:
        commands = params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            raise bad_request("can't parse commands JSON object")
        for command in commands:
            name = str((command or {}).get("command", ""))
            if not 1 <= len(name) <= 32 or not all(
                c.islower() or c.isdigit() or c == "_" for c in name
            ):
                raise bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
        self.state.commands[self._commands_key(params)] = copy.deepcopy(commands)
        return True

    async def m_deleteMyCommands(self, params: Params) -> Any:
        self.state.commands.pop(self._commands_key(params), None)
        return True

    async def m_getMyCommands(self, params: Params) -> Any:
        return copy.deepcopy(self.state.commands.get(self._commands_key(params), []))

    async def m_answerCallbackQuery(self, params: Params) -> Any:
        query_id = str(params.get("callback_query_id") or "")
        if self.state.callback_queries.get(query_id, True):
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        if len(str(params.get("text") or "")) > 200:
            raise bad_request("MESSAGE_TOO_LONG")
        self.state.callback_queries[query_id] = True
        return True


def _mime(upload: Any) -> str:
    if isinstance(upload, UploadedFile) and upload.content_type:
        return upload.content_type
    return "application/octet-stream"
