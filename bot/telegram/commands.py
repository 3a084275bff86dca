"""The command catalogue, and publishing it with setMyCommands: users see their commands,
admins (in their private chats with the bot) also see the admin ones."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from telegram import Bot, BotCommand, BotCommandScopeChat, BotCommandScopeDefault
from telegram.error import TelegramError

from bot.chat_config import PARAMETERS

logger = logging.getLogger(__name__)

USER_COMMANDS = {
    "start": "what this bot is",
    "help": "how to use the bot",
    "stop": "stop the reply being written",
    "retry": "write the last reply again",
    "reset": "start a new conversation",
    "forget": "delete everything the bot stored about you",
    "export": "get your conversation history as files",
    "memory": "what the bot remembers of this conversation",
}
ADMIN_USAGE = {
    "prompt": "/prompt — show the system prompt in force here and where it comes from",
    "setprompt": "/setprompt <text> — set this chat's own system prompt",
    "resetprompt": "/resetprompt — drop this chat's own prompt and preset",
    "globalprompt": "/globalprompt [<text> | reset] — show, set or reset the global prompt",
    "prompts": "/prompts — list the prompt presets",
    "preset": "/preset new|edit <name> <text> · /preset show|use|delete|history <name>",
    "set": "/set <parameter> <value | default> — for this chat; parameters: "
    + ", ".join(PARAMETERS),
    "setglobal": "/setglobal <parameter> <value | default> — for every chat",
    "settings": "/settings — the model and sampling parameters in force here",
    "profile": "/profile [<name> | default] — show the model profiles, or switch this chat",
    "allow": "/allow <user id> — let a user chat (closes the bot to users not allowed)",
    "disallow": "/disallow <user id> — take a user off the allowlist",
    "block": "/block <user id> — ignore a user",
    "unblock": "/unblock <user id> — stop ignoring a user",
    "allowchat": "/allowchat [<chat id>] — let everyone in a chat use the bot",
    "disallowchat": "/disallowchat [<chat id>] — take a chat off the allowlist",
    "memory": "/memory chat|user — in groups: one shared memory, or one per member",
    "summary": "/summary on|off|default — fold old turns into a rolling summary in this chat",
    "stats": "/stats [days] — users, messages and tokens (default: 7 days)",
}


def _menu(commands: dict[str, str]) -> list[BotCommand]:
    return [BotCommand(name, text[:256]) for name, text in commands.items()]


# Admin commands with buttons of their own (bot/telegram/tools_admin.py), not in ADMIN_USAGE.
BUTTON_COMMANDS = {"tools": "/tools [on|off <name>] — the tools on offer here, with on/off buttons"}


def admin_menu() -> list[BotCommand]:
    described = {
        name: line.split(" — ", 1)[-1]
        for name, line in (ADMIN_USAGE | BUTTON_COMMANDS).items()
        if name not in USER_COMMANDS
    }
    return _menu(USER_COMMANDS) + _menu(described)


async def publish_commands(bot: Bot, admin_ids: Iterable[int]) -> None:
    """Register the menus; an admin who never opened a chat with the bot is skipped."""
    await bot.set_my_commands(_menu(USER_COMMANDS), scope=BotCommandScopeDefault())
    for admin_id in admin_ids:
        try:
            await bot.set_my_commands(admin_menu(), scope=BotCommandScopeChat(admin_id))
        except TelegramError as exc:
            logger.warning("admin %s: admin menu not registered (%s)", admin_id, exc)
