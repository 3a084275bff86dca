"""Every handler of the Telegram application, registered here and only here, in order.

python-telegram-bot runs, for each update, the first matching handler of every group, groups
in ascending order; `ApplicationHandlerStop` ends the update. So the order rules are:

- group BEFORE_THE_GATE: bookkeeping owed whatever the sender may do (a group becoming a
  supergroup moves its memory); it stops the update.
- group THE_GATE: the access gate; a refused update stops there.
- group 0, one handler per update:
  * commands, each name once; the one exception is /memory: bare (what the bot remembers)
    before the admins' `/memory chat|user` (it takes the rest).
  * messages: text, then anything else: `attachment` takes photos, albums, recordings and
    files as turns, and answers what it cannot read (stickers, locations...).
  * buttons: callback data starts with its feature's prefix (`forget:`; a new feature adds
    its own, e.g. `tools:`, `toolconfirm:`), one handler per prefix; the stale-button answer
    comes last and takes every other press.
- the one error handler.
"""

from __future__ import annotations

from telegram import Update
from telegram.ext import CallbackQueryHandler, CommandHandler, MessageHandler, TypeHandler, filters

from bot.telegram.admin import AdminHandlers
from bot.telegram.commands import ADMIN_USAGE
from bot.telegram.handlers import AnyApplication, ChatHandlers
from bot.telegram.supergroup import SupergroupHandlers
from bot.telegram.tool_confirm import PREFIX as CONFIRM_PREFIX
from bot.telegram.tools_admin import PREFIX as TOOLS_PREFIX
from bot.telegram.tools_admin import ToolsAdmin
from bot.telegram.userdata_commands import FORGET_DATA, UserDataHandlers

BEFORE_THE_GATE = -2
THE_GATE = -1


def register(
    app: AnyApplication,
    chat: ChatHandlers,
    admin: AdminHandlers,
    userdata: UserDataHandlers,
    supergroup: SupergroupHandlers,
    tools: ToolsAdmin,
) -> None:
    """Add every handler of the bot to `app`, in the order the module docstring gives."""
    new = filters.UpdateType.MESSAGE
    add = app.add_handler
    add(MessageHandler(new & filters.StatusUpdate.MIGRATE, supergroup.migrated), BEFORE_THE_GATE)
    add(TypeHandler(Update, chat.gate), THE_GATE)

    for name, command in (
        ("start", chat.start),
        ("help", chat.help),
        ("reset", chat.reset),
        ("stop", chat.stop),
        ("retry", chat.retry),
        ("forget", userdata.forget),
        ("export", userdata.export),
    ):
        add(CommandHandler(name, command, filters=new))
    add(CommandHandler("memory", chat.memory, filters=new, has_args=False))
    add(CommandHandler("memory", admin.command("memory"), filters=new))
    for name in (name for name in ADMIN_USAGE if name != "memory"):
        add(CommandHandler(name, admin.command(name), filters=new))
    add(CommandHandler("tools", tools.command, filters=new))

    add(MessageHandler(new & filters.TEXT & ~filters.COMMAND, chat.text))
    add(MessageHandler(new & ~filters.TEXT, chat.attachment))

    add(CallbackQueryHandler(userdata.confirm_forget, pattern=FORGET_DATA))
    add(CallbackQueryHandler(chat.confirmations.on_tap, pattern=f"^{CONFIRM_PREFIX}"))
    add(CallbackQueryHandler(tools.tap, pattern=f"^{TOOLS_PREFIX}"))
    # Last of the buttons: old, forged or malformed data, and prefixes no handler above knows.
    add(CallbackQueryHandler(userdata.stale_button))

    app.add_error_handler(chat.on_error)
