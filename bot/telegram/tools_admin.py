"""/tools: admins see the tools on offer and turn them on or off for a chat with buttons.

The list shows each tool with its state; a tap (callback data ``tools:<name>``) flips it,
audits the change and redraws the list. `/tools on <name>` and `/tools off <name>` do the
same in words. The choice is a column of the chat (`chats.disabled_tools`).
"""

from __future__ import annotations

import json

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from bot.access import Access
from bot.config import Settings
from bot.db import admin_store, store
from bot.telegram.handlers import Context, chat_info
from bot.tools.toolbox import Toolbox

PREFIX = "tools:"
REFUSAL = "Sorry, that command is for the bot's admins."
NO_TOOLS = "No tools are configured (see TOOLS_ENABLED, BUILTIN_TOOLS and MCP_SERVERS)."
TURNED_OFF = "Tools are off for every chat (TOOLS_ENABLED=false)."
HEADER = "Tools in this chat (tap to turn one on or off):"
USAGE = "Usage: /tools · /tools on <name> · /tools off <name>"
UNKNOWN = "No tool is called {name!r}. /tools lists them."
CALLBACK_BYTES = 64  # Telegram's limit on callback data


class ToolsAdmin:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        access: Access,
        toolbox: Toolbox | None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._access = access
        self._toolbox = toolbox

    def _names(self) -> list[str]:
        return self._toolbox.names() if self._toolbox is not None else []

    async def command(self, update: Update, context: Context) -> None:
        """List the tools with buttons, or turn one on or off by name."""
        message, user = update.effective_message, update.effective_user
        assert message is not None and update.effective_chat is not None
        if user is None or not self._access.is_admin(user.id):
            await message.reply_text(REFUSAL)
            return
        args = (message.text or "").split()[1:]
        if not args:
            text, markup = await self._listing(update)
            await message.reply_text(text, reply_markup=markup)
            return
        if len(args) != 2 or args[0] not in ("on", "off"):
            await message.reply_text(USAGE)
            return
        if args[1] not in self._names():
            await message.reply_text(UNKNOWN.format(name=args[1][:64]))
            return
        off = await self._set(update, args[1], enabled=args[0] == "on", actor=user.id)
        await message.reply_text(f"{args[1]} is {'off' if off else 'on'} in this chat.")

    async def tap(self, update: Update, context: Context) -> None:
        """Flip the tapped tool and redraw the list."""
        query, user = update.callback_query, update.effective_user
        assert query is not None and query.data is not None and update.effective_chat is not None
        if user is None or not self._access.is_admin(user.id):
            await query.answer(REFUSAL, show_alert=True)
            return
        name = query.data.removeprefix(PREFIX)
        if name not in self._names():
            await query.answer(UNKNOWN.format(name=name[:64]), show_alert=True)
            return
        off = await self._set(update, name, enabled=None, actor=user.id)
        await query.answer(f"{name}: {'off' if off else 'on'}")
        text, markup = await self._listing(update)
        await query.edit_message_text(text, reply_markup=markup)

    async def _set(self, update: Update, name: str, *, enabled: bool | None, actor: int) -> bool:
        """Turn `name` on or off (None: flip it) in the update's chat, audited; whether it is
        off now."""
        assert update.effective_chat is not None
        async with self._sessions.begin() as session:
            row = await store.upsert_chat(session, chat_info(update.effective_chat))
            off = set(row.tools_off)
            if enabled is None:
                enabled = name in off
            if enabled:
                off.discard(name)
            else:
                off.add(name)
            value = json.dumps(sorted(off)) if off else None
            await admin_store.set_chat_field(session, actor, row.id, "disabled_tools", value)
        return name in off

    async def _listing(self, update: Update) -> tuple[str, InlineKeyboardMarkup | None]:
        names = self._names()
        if not names:
            return NO_TOOLS, None
        assert update.effective_chat is not None
        async with self._sessions.begin() as session:
            off = (await store.upsert_chat(session, chat_info(update.effective_chat))).tools_off
        rows = [
            [InlineKeyboardButton(f"{'❌' if n in off else '✅'} {n}", callback_data=PREFIX + n)]
            for n in names
            if len((PREFIX + n).encode()) <= CALLBACK_BYTES
        ]
        header = HEADER if self._settings.tools_enabled else TURNED_OFF
        return header, InlineKeyboardMarkup(rows)
