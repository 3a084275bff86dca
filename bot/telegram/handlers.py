"""Chat handlers: /start, /help, /reset, text turns, and a clear answer for everything else."""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Awaitable, Callable
from typing import Any

from telegram import BotCommandScopeChat, Chat, Message, Update
from telegram.constants import ChatType, MessageEntityType
from telegram.ext import Application, ApplicationHandlerStop, ContextTypes

from bot.access import Access, Verdict
from bot.config import Settings
from bot.conversation import Incoming
from bot.media import MediaProcessor
from bot.model_step import TurnControl
from bot.prompt.recall import Remembered
from bot.reply_sink import ReplySink
from bot.runtime.metrics import TURNS
from bot.telegram.attachments import AlbumLog, AttachmentHandler
from bot.telegram.commands import ADMIN_USAGE, BUTTON_COMMANDS, admin_menu
from bot.telegram.streamer import TelegramReply
from bot.telegram.tool_confirm import PREFIX as CONFIRM_PREFIX
from bot.telegram.tool_confirm import ToolConfirmations
from bot.turn import Outcome, TurnRunner
from bot.values import ChatInfo, UserInfo
from bot.wording import render

logger = logging.getLogger(__name__)

WELCOME = (
    "Hi! I'm a chat bot with memory: I remember our conversation until you /reset it.\n"
    "Just send me a message."
)
HELP = (
    "Send me a message and I'll answer, keeping our conversation in mind: text, a photo "
    "(or an album), a voice message, or a file (PDF, DOCX, text) with your question as its "
    "caption.\n\n"
    "/stop — stop the reply I'm writing\n"
    "/retry — write my last reply again\n"
    "/reset — start a new conversation (I forget the current one)\n"
    "/export — your conversation history as files\n"
    "/forget — delete everything I stored about you\n"
    "/memory — what I remember of our conversation\n"
    "/help — this message\n\n"
    "In groups, mention me or reply to one of my messages."
)
RESET_DONE = "Started a new conversation. I've forgotten what we talked about."
TEXT_ONLY = "I can only read text messages for now. Please send your question as text."
NOT_ALLOWED = "Sorry, this bot is private."
INTERNAL_ERROR = "Sorry, something went wrong on my side. Please try again."
NOTHING_TO_STOP = "Nothing to stop: I'm not writing a reply right now."
NOTHING_TO_RETRY = "Nothing to retry yet: send me a message first."
BUSY = "I'm still answering your earlier messages. Please wait a moment and send this one again."
CONTROL_COMMANDS = frozenset({"/stop"})

Context = ContextTypes.DEFAULT_TYPE
AnyApplication = Application[Any, Any, Any, Any, Any, Any]


def chat_info(chat: Chat) -> ChatInfo:
    return ChatInfo(chat.id, chat.type, chat.title)


def _chat_info(update: Update) -> ChatInfo:
    assert update.effective_chat is not None
    return chat_info(update.effective_chat)


def topic(message: Message) -> int | None:
    """The forum topic a message belongs to (None outside topics, and in General)."""
    return message.message_thread_id if message.is_topic_message else None


def _user_info(update: Update) -> UserInfo:
    user = update.effective_user
    assert user is not None
    return UserInfo(user.id, user.first_name, user.last_name, user.username, user.language_code)


class ChatHandlers:
    """The handlers, bound to the services they need."""

    def __init__(
        self,
        settings: Settings,
        runner: TurnRunner,
        access: Access,
        media: MediaProcessor | None = None,
        log: AlbumLog | None = None,
    ) -> None:
        self._settings = settings
        self._runner = runner
        self._access = access
        self.confirmations = ToolConfirmations(settings.tools_confirm_seconds)
        self._active: dict[int, TurnControl] = {}  # chat id → the turn streaming there
        self._attachments = (
            AttachmentHandler(runner, media, self._turn, log) if media is not None else None
        )

    async def gate(self, update: Update, context: Context) -> None:
        """Stop updates from users who may not use the bot: blocked ones silently."""
        user, chat = update.effective_user, update.effective_chat
        if user is None:
            return
        verdict = await self._access.verdict(user.id, chat.id if chat else None)
        if verdict is Verdict.ALLOWED:
            return
        message = update.effective_message
        denied = verdict is Verdict.DENIED and update.message is not None
        if denied and message is not None and self._addressed(message):
            await message.reply_text(NOT_ALLOWED)
        raise ApplicationHandlerStop

    async def start(self, update: Update, context: Context) -> None:
        """Greet the user; give an admin their command menu."""
        assert update.effective_message is not None
        await update.effective_message.reply_text(WELCOME)
        await self._admin_menu(update, context)

    async def help(self, update: Update, context: Context) -> None:
        """List the commands; admins also see theirs."""
        assert update.effective_message is not None
        user = update.effective_user
        text = HELP
        if self._access.is_admin(user.id if user else None):
            commands = ADMIN_USAGE | BUTTON_COMMANDS
            text += "\n\nAdmin commands:\n" + "\n".join(commands.values())
        await update.effective_message.reply_text(text)
        await self._admin_menu(update, context)

    async def _admin_menu(self, update: Update, context: Context) -> None:
        """An admin's private chat gets the admin menu (it cannot be set before they write)."""
        chat, user = update.effective_chat, update.effective_user
        private = chat is not None and chat.type == ChatType.PRIVATE
        if private and user is not None and self._access.is_admin(user.id):
            await context.bot.set_my_commands(admin_menu(), scope=BotCommandScopeChat(user.id))

    async def reset(self, update: Update, context: Context) -> None:
        """Start a new conversation; the old one stays stored."""
        assert update.effective_message is not None
        message = update.effective_message
        await self._runner.conversations.reset(
            _chat_info(update), _user_info(update), topic(message)
        )
        await message.reply_text(RESET_DONE)

    async def memory(self, update: Update, context: Context) -> None:
        """Show what the bot remembers here: the summary and how many recent messages fit."""
        message = update.effective_message
        assert message is not None
        found = await self._runner.conversations.remembered(
            _chat_info(update), _user_info(update), topic(message)
        )
        await message.reply_text(describe_memory(found))

    async def stop(self, update: Update, context: Context) -> None:
        """Stop the reply being written in this chat; what was shown stays."""
        message = update.effective_message
        assert message is not None
        control = self._active.get(message.chat_id)
        if control is None:
            await message.reply_text(NOTHING_TO_STOP)
        else:
            control.stop()

    async def retry(self, update: Update, context: Context) -> None:
        """Write the last reply again, replacing it in memory."""
        message = update.effective_message
        assert message is not None
        user = _user_info(update)
        if not await self._within_quota(message, user.id):
            return
        stored = await self._runner.conversations.last_question(
            _chat_info(update), user, topic(message)
        )
        if stored is None:
            await message.reply_text(NOTHING_TO_RETRY)
            return
        await self._turn(
            update,
            context,
            stored.telegram_message_id,
            lambda sink, control: self._runner.answer(stored, user, sink, control),
        )

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
        if not await self._within_quota(message, _user_info(update).id):
            return
        incoming = Incoming(
            _chat_info(update), _user_info(update), text, message.message_id, topic(message)
        )
        await self._turn(
            update,
            context,
            message.message_id,
            lambda sink, control: self._runner.run(incoming, sink, control),
        )

    async def _turn(
        self,
        update: Update,
        context: Context,
        reply_to: int | None,
        run: Callable[[ReplySink, TurnControl], Awaitable[Outcome]],
    ) -> None:
        """Run a turn with a live reply, registered so /stop can reach it."""
        message = update.effective_message
        assert message is not None
        private = message.chat.type == ChatType.PRIVATE
        s = self._settings
        asker = update.effective_user.id if update.effective_user else 0
        sink = TelegramReply(
            context.bot,
            message.chat_id,
            reply_to=reply_to,
            interval=s.edit_interval if private else s.group_edit_interval,
            thread_id=topic(message),
            drafts=private and s.stream_mode == "draft",
            ask_to_run=functools.partial(
                self.confirmations.ask,
                context.bot,
                message.chat_id,
                asker,
                thread_id=topic(message),
            ),
        )
        control = TurnControl()
        self._active[message.chat_id] = control
        try:
            outcome = await run(sink, control)
            TURNS.labels(outcome.value).inc()
        finally:
            if self._active.get(message.chat_id) is control:
                del self._active[message.chat_id]
            await sink.close()

    async def _within_quota(self, message: Message, user_id: int) -> bool:
        problem = await self._access.quota_problem(user_id)
        if problem is not None:
            await message.reply_text(render(problem))
        return problem is None

    def skips_queue(self, update: Update) -> bool:
        """Control commands and confirmation buttons act on the running turn, so they must
        not wait behind it; an album's later items join its first, already in line."""
        query = update.callback_query
        if query is not None and (query.data or "").startswith(CONFIRM_PREFIX):
            return True
        if self._attachments is not None and self._attachments.albums.joins(update):
            return True
        text = update.message.text if update.message is not None else None
        if not text or not text.strip():
            return False
        return text.split(maxsplit=1)[0].split("@")[0] in CONTROL_COMMANDS

    def keeps_pending(self, update: Update) -> bool:
        """An album's later item: marked done with the album's turn (see attachments.py)."""
        return update.message is not None and update.message.media_group_id is not None

    async def busy(self, update: Update) -> None:
        """Answer a message that arrived while the chat's queue was full."""
        if self._attachments is not None:
            await self._attachments.ignore(update)  # an album's first item: not answered
        if update.effective_message is not None and self._addressed(update.effective_message):
            await update.effective_message.reply_text(BUSY)

    async def attachment(self, update: Update, context: Context) -> None:
        """Answer a message that is not text: its attachment as a turn, or why not (in
        groups only when addressed)."""
        message = update.effective_message
        assert message is not None
        if not self._addressed(message):
            if self._attachments is not None:
                await self._attachments.ignore(update)  # an album not meant for the bot
            return
        if self._attachments is None:
            await message.reply_text(TEXT_ONLY)
            return
        user = _user_info(update)
        if await self._within_quota(message, user.id):
            await self._attachments.handle(update, context, user)

    async def on_error(self, update: object, context: Context) -> None:
        """Log every unexpected error; tell the user something went wrong."""
        logger.error("error while handling an update", exc_info=context.error)
        if isinstance(update, Update) and update.effective_message is not None:
            try:
                await update.effective_message.reply_text(INTERNAL_ERROR)
            except Exception:  # the report must never raise; it is only a courtesy
                logger.warning("could not tell the user about the error", exc_info=True)

    def _addressed(self, message: Message) -> bool:
        """In private chats always; in groups when mentioned, replied to or commanded."""
        if message.chat.type == ChatType.PRIVATE:
            return True
        bot = message.get_bot()
        replied = message.reply_to_message
        if replied is not None and replied.from_user is not None and replied.from_user.id == bot.id:
            return True
        mention = f"@{bot.username}".lower()
        kinds: list[str | None] = [MessageEntityType.MENTION, MessageEntityType.BOT_COMMAND]
        entities = {**message.parse_entities(kinds), **message.parse_caption_entities(kinds)}
        for entity, value in entities.items():
            value = value.lower()
            if entity.type == MessageEntityType.MENTION and value == mention:
                return True
            command_for = value.partition("@")[2]
            if entity.type == MessageEntityType.BOT_COMMAND and entity.offset == 0:
                return command_for in ("", bot.username.lower())
        return False

    @staticmethod
    def _without_mention(message: Message, username: str) -> str:
        """The text without the bot's @mention (Telegram usernames are case-insensitive)."""
        text = message.text or ""
        if message.chat.type == ChatType.PRIVATE:
            return text
        return re.sub(rf"@{re.escape(username)}\b", "", text, flags=re.IGNORECASE).strip()


def describe_memory(found: Remembered) -> str:
    """The /memory answer."""
    if found.recent_messages == 0 and not found.summary:
        return "I don't remember anything of this conversation yet."
    lines = []
    if found.summary:
        lines += [
            f"Summary of our earlier conversation ({found.summary_tokens} tokens):",
            found.summary,
            "",
        ]
    else:
        lines += ["No summary yet: everything we said still fits.", ""]
    lines.append(
        f"Recent messages I see word for word: {found.recent_messages} "
        f"({found.recent_tokens} of {found.budget} tokens)."
    )
    return "\n".join(lines)[:4096]
