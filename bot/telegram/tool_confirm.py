"""Asking the user before a tool the operator marked "confirm" runs: a message with two buttons.

The turn waits on the question (callback data ``toolconfirm:<token>:yes|no``) for at most
TOOLS_CONFIRM_SECONDS; only the user whose message started the turn can answer. No answer, or
"Don't run", gives the model an error result ("declined"). Button taps skip the chat's queue
(the turn they answer is running in it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from dataclasses import dataclass
from typing import Any

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import TelegramError
from telegram.ext import ContextTypes, ExtBot

from bot.parts import ToolCallPart
from bot.tools.loop import argument_preview

logger = logging.getLogger(__name__)

PREFIX = "toolconfirm:"
QUESTION = "The assistant wants to run the tool {name}{preview}. Allow it?"
ALLOWED = "✅ Allowed: {name}"
DECLINED = "❌ Not run: {name}"
EXPIRED = "⌛ Not run (no answer): {name}"
NOT_YOURS = "Only the person who asked can answer this."
GONE = "This question is no longer open."


@dataclass(slots=True)
class _Question:
    user_id: int
    answer: asyncio.Future[bool]


class ToolConfirmations:
    """The open questions of every chat, by token."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._open: dict[str, _Question] = {}

    async def ask(
        self,
        bot: ExtBot[Any],
        chat_id: int,
        user_id: int,
        call: ToolCallPart,
        name: str,
        *,
        thread_id: int | None = None,
    ) -> bool:
        """Ask in the chat whether `call` may run; True when the user taps "Run"."""
        token = secrets.token_urlsafe(9)
        preview = argument_preview(call)
        words = {"name": name, "preview": f" «{preview}»" if preview else ""}
        buttons = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("Run", callback_data=f"{PREFIX}{token}:yes"),
                    InlineKeyboardButton("Don't run", callback_data=f"{PREFIX}{token}:no"),
                ]
            ]
        )
        question = _Question(user_id, asyncio.get_running_loop().create_future())
        self._open[token] = question
        try:
            message = await bot.send_message(
                chat_id, QUESTION.format(**words), reply_markup=buttons, message_thread_id=thread_id
            )
        except TelegramError as exc:
            logger.warning("chat %s: could not ask to confirm a tool: %s", chat_id, exc)
            del self._open[token]
            return False
        try:
            async with asyncio.timeout(self.seconds):
                allowed = await question.answer
        except TimeoutError:
            allowed, outcome = False, EXPIRED
        else:
            outcome = ALLOWED if allowed else DECLINED
        finally:
            self._open.pop(token, None)
        with contextlib.suppress(TelegramError):  # the buttons go; the outcome stays readable
            await bot.edit_message_text(outcome.format(**words), chat_id, message.message_id)
        return allowed

    async def on_tap(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Answer an open question from its button."""
        query = update.callback_query
        assert query is not None and query.data is not None
        token, _, choice = query.data.removeprefix(PREFIX).partition(":")
        question = self._open.get(token)
        if question is None or question.answer.done():
            await query.answer(GONE)
            return
        if query.from_user.id != question.user_id:
            await query.answer(NOT_YOURS, show_alert=True)
            return
        question.answer.set_result(choice == "yes")
        await query.answer()
