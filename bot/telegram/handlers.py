"""Chat handlers: /start, /help, /reset, text turns, and a clear answer for everything else."""

from __future__ import annotations

import logging
from typing import Any

from telegram import Message, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.ext import (
    Application,
    ApplicationHandlerStop,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    TypeHandler,
    filters,
)

from bot.config import Settings
from bot.db.store import ChatInfo, UserInfo
from bot.telegram.streamer import TelegramReply
from bot.turn import Incoming, TurnRunner

logger = logging.getLogger(__name__)

WELCOME = (
    "Hi! I'm a chat bot with memory: I remember our conversation until you /reset it.\n"
    "Just send me a message."
)
HELP = (
    "Send me a text message and I'll answer, keeping our conversation in mind.\n\n"
    "/reset — start a new conversation (I forget the current one)\n"
    "/help — this message\n\n"
    "In groups, mention me or reply to one of my messages."
)
RESET_DONE = "Started a new conversation. I've forgotten what we talked about."
TEXT_ONLY = "I can only read text messages for now. Please send your question as text."
NOT_ALLOWED = "Sorry, this bot is private."
INTERNAL_ERROR = "Sorry, something went wrong on my side. Please try again."

Context = ContextTypes.DEFAULT_TYPE
AnyApplication = Application[Any, Any, Any, Any, Any, Any]


def _chat_info(update: Update) -> ChatInfo:
    chat = update.effective_chat
    assert chat is not None
    return ChatInfo(chat.id, chat.type, chat.title)


def _user_info(update: Update) -> UserInfo:
    user = update.effective_user
    assert user is not None
    return UserInfo(user.id, user.first_name, user.last_name, user.username, user.language_code)


class ChatHandlers:
    """The handlers, bound to the services they need."""

    def __init__(self, settings: Settings, runner: TurnRunner) -> None:
        self._settings = settings
        self._runner = runner

    def register(self, app: AnyApplication) -> None:
        new_messages = filters.UpdateType.MESSAGE
        app.add_handler(TypeHandler(Update, self.gate), group=-1)
        app.add_handler(CommandHandler("start", self.start, filters=new_messages))
        app.add_handler(CommandHandler("help", self.help, filters=new_messages))
        app.add_handler(CommandHandler("reset", self.reset, filters=new_messages))
        app.add_handler(MessageHandler(new_messages & filters.TEXT & ~filters.COMMAND, self.text))
        app.add_handler(MessageHandler(new_messages & ~filters.TEXT, self.unsupported))
        app.add_error_handler(self.on_error)

    async def gate(self, update: Update, context: Context) -> None:
        """Stop updates from users who may not use the bot, with one polite answer."""
        user = update.effective_user
        allowed = self._settings.allowed_user_ids
        if user is None or not allowed or user.id in allowed | self._settings.admin_user_ids:
            return
        message = update.effective_message
        if message is not None and update.message is not None and self._addressed(message):
            await message.reply_text(NOT_ALLOWED)
        raise ApplicationHandlerStop

    async def start(self, update: Update, context: Context) -> None:
        """Greet the user."""
        assert update.effective_message is not None
        await update.effective_message.reply_text(WELCOME)

    async def help(self, update: Update, context: Context) -> None:
        """List the commands."""
        assert update.effective_message is not None
        await update.effective_message.reply_text(HELP)

    async def reset(self, update: Update, context: Context) -> None:
        """Start a new conversation; the old one stays stored."""
        assert update.effective_message is not None
        await self._runner.reset(_chat_info(update), _user_info(update))
        await update.effective_message.reply_text(RESET_DONE)

    async def text(self, update: Update, context: Context) -> None:
        """Answer a text message with a streamed reply."""
        message = update.effective_message
        assert message is not None and message.text is not None
        if not self._addressed(message):
            return
        text = self._without_mention(message, context.bot.username)
        if not text.strip():
            await message.reply_text(HELP)
            return
        chat = _chat_info(update)
        interval = (
            self._settings.edit_interval
            if chat.type == ChatType.PRIVATE
            else self._settings.group_edit_interval
        )
        sink = TelegramReply(
            context.bot,
            chat.id,
            reply_to=message.message_id,
            interval=interval,
            thread_id=message.message_thread_id if message.is_topic_message else None,
        )
        try:
            await self._runner.run(
                Incoming(chat, _user_info(update), text, message.message_id), sink
            )
        finally:
            await sink.close()

    async def unsupported(self, update: Update, context: Context) -> None:
        """Say clearly that only text is understood (in groups only when addressed)."""
        message = update.effective_message
        assert message is not None
        if self._addressed(message):
            await message.reply_text(TEXT_ONLY)

    async def on_error(self, update: object, context: Context) -> None:
        """Log every unexpected error; tell the user something went wrong."""
        logger.error("error while handling an update", exc_info=context.error)
        if isinstance(update, Update) and update.effective_message is not None:
            try:
                await update.effective_message.reply_text(INTERNAL_ERROR)
            except Exception:  # the report must never raise; it is only a courtesy
                logger.warning("could not tell the user about the error", exc_info=True)

    def _addressed(self, message: Message) -> bool:
        """In private chats always; in groups when mentioned or replied to."""
        if message.chat.type == ChatType.PRIVATE:
            return True
        bot = message.get_bot()
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
            return True
        mention = f"@{bot.username}".lower()
        entities = message.parse_entities([MessageEntityType.MENTION])
        return any(value.lower() == mention for value in entities.values())

    @staticmethod
    def _without_mention(message: Message, username: str) -> str:
        text = message.text or ""
        if message.chat.type == ChatType.PRIVATE:
            return text
        return text.replace(f"@{username}", "").strip()
