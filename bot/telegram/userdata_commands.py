"""/forget and /export: users control the data the bot keeps about them."""

from __future__ import annotations

import re
from io import BytesIO

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update

from bot.db import userdata
from bot.export import to_jsonl, to_markdown
from bot.telegram.handlers import Context

CONFIRM_FORGET = (
    "Delete everything I stored about you — your messages, my replies to them, the summaries "
    "and settings they are in, your usage and your name? This cannot be undone."
)
NOT_YOURS = "This button is not for you."
STALE_BUTTON = "This button no longer works."
FORGET_DATA = re.compile(r"^forget:(\d+):(yes|no)$")
NOTHING_STORED = "I have no conversation with you stored here yet."


class UserDataHandlers:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def forget(self, update: Update, context: Context) -> None:
        """Ask for confirmation with two buttons bound to the asking user."""
        message, user = update.effective_message, update.effective_user
        assert message is not None and user is not None
        keyboard = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("Yes, delete", callback_data=f"forget:{user.id}:yes"),
                    InlineKeyboardButton("Cancel", callback_data=f"forget:{user.id}:no"),
                ]
            ]
        )
        await message.reply_text(CONFIRM_FORGET, reply_markup=keyboard)

    async def confirm_forget(self, update: Update, context: Context) -> None:
        """Delete on "yes" from the user who asked; anyone else's press changes nothing."""
        query = update.callback_query
        assert query is not None
        found = FORGET_DATA.match(query.data or "")
        assert found is not None  # the handler's pattern
        owner, answer = found.groups()
        if str(query.from_user.id) != owner:
            await query.answer(NOT_YOURS, show_alert=True)
            return
        await query.answer()
        if answer != "yes":
            await query.edit_message_text("Cancelled: nothing was deleted.")
            return
        async with self._sessions.begin() as session:
            deleted = await userdata.forget_user(session, query.from_user.id)
        await query.edit_message_text(
            f"Done: deleted {deleted} stored messages and everything else I kept about you."
        )

    async def stale_button(self, update: Update, context: Context) -> None:
        """Answer any other button press (old, forged or malformed data) so the client stops."""
        assert update.callback_query is not None
        await update.callback_query.answer(STALE_BUTTON)

    async def export(self, update: Update, context: Context) -> None:
        """Send the user's history here as Markdown and as fine-tuning JSONL."""
        message, user = update.effective_message, update.effective_user
        assert message is not None and user is not None
        async with self._sessions() as session:
            found = await userdata.user_conversations(session, message.chat_id, user.id)
        if not found:
            await message.reply_text(NOTHING_STORED)
            return
        for name, body in (("history.md", to_markdown(found)), ("history.jsonl", to_jsonl(found))):
            await message.reply_document(InputFile(BytesIO(body.encode()), filename=name))
