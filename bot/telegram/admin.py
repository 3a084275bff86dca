"""Admin commands: system prompts and presets, model and sampling, access, memory, stats.

Admins are the numeric ids in ADMIN_USER_IDS. A non-admin gets a plain refusal and nothing
changes; malformed arguments get the command's usage line. Every change is audited.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Message, Update

from bot.access import Access
from bot.chat_config import PARAMETERS, effective_parameter, parse_parameter
from bot.config import Settings
from bot.db import admin_store, store
from bot.db.models import Chat
from bot.telegram.admin_profile import profile_command
from bot.telegram.commands import ADMIN_USAGE
from bot.telegram.handlers import Context, chat_info
from bot.turn import TurnRunner

REFUSAL = "Sorry, that command is for the bot's admins."
PRESET_NAME = re.compile(r"^[a-z0-9_-]{1,64}$")
MAX_PROMPT = 8000
ASCII_ID = re.compile(r"-?[0-9]+")  # str.isdigit() also takes "٣" and "²"
USAGE = ADMIN_USAGE
Handler = Callable[[Message, list[str], str, int], Awaitable[str]]


class UsageError(ValueError):
    """The arguments do not fit the command; the usage line is the answer."""


class AdminHandlers:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        runner: TurnRunner,
        access: Access,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._runner = runner
        self._access = access

    def command(self, name: str) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
        """The handler of the admin command `name` (a key of USAGE): admins only."""
        handler: Handler = getattr(self, f"cmd_{name}")
        return self._guarded(name, handler)

    def _guarded(
        self, name: str, handler: Handler
    ) -> Callable[[Update, Context], Coroutine[Any, Any, None]]:
        async def run(update: Update, context: Context) -> None:
            message, user = update.effective_message, update.effective_user
            assert message is not None
            if user is None or not self._access.is_admin(user.id):
                await message.reply_text(REFUSAL)
                return
            text = store.without_nul(message.text or "")
            rest = text.split(maxsplit=1)[1] if len(text.split(maxsplit=1)) > 1 else ""
            try:
                answer = await handler(message, rest.split(), rest, user.id)
            except (UsageError, ValueError, LookupError) as exc:
                detail = f"{exc}\n" if str(exc) else ""
                answer = f"{detail}Usage: {USAGE[name]}"
            await message.reply_text(answer[:4096])

        return run

    async def _chat_row(self, session: AsyncSession, message: Message) -> Chat:
        return await store.upsert_chat(session, chat_info(message.chat))

    # --- system prompts -------------------------------------------------------------------

    async def cmd_prompt(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        async with self._sessions() as session:
            chat = await self._chat_row(session, message)
            config = await self._runner.conversations.chat_config(session, chat)
            await session.commit()
        return f"System prompt ({config.prompt_source}):\n{config.system_prompt or '(empty)'}"

    async def cmd_setprompt(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        text = _prompt_text(rest)
        async with self._sessions.begin() as session:
            chat = await self._chat_row(session, message)
            await admin_store.set_chat_field(session, actor, chat.id, "system_prompt", text)
        return "This chat's system prompt is set; it applies from the next message."

    async def cmd_resetprompt(
        self, message: Message, args: list[str], rest: str, actor: int
    ) -> str:
        if args:
            raise UsageError()
        async with self._sessions.begin() as session:
            chat = await self._chat_row(session, message)
            await admin_store.set_chat_field(session, actor, chat.id, "system_prompt", None)
            await admin_store.set_chat_field(session, actor, chat.id, "preset", None)
        return "This chat now uses the global system prompt."

    async def cmd_globalprompt(
        self, message: Message, args: list[str], rest: str, actor: int
    ) -> str:
        async with self._sessions.begin() as session:
            if not args:
                current = (await admin_store.overrides(session)).get("system_prompt")
                source = "set by an admin" if current is not None else "from SYSTEM_PROMPT"
                return (
                    f"Global system prompt ({source}):\n{current or self._settings.system_prompt}"
                )
            value = None if rest.strip().lower() == "reset" else _prompt_text(rest)
            await admin_store.set_override(session, actor, "system_prompt", value)
        return "Global system prompt " + ("reset to SYSTEM_PROMPT." if value is None else "set.")

    async def cmd_prompts(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        async with self._sessions() as session:
            found = await admin_store.presets(session)
        if not found:
            return "No presets yet. Create one with /preset new <name> <text>."
        lines = [f"• {p.name} (v{p.version}): {_excerpt(p.text)}" for p in found]
        return "Prompt presets:\n" + "\n".join(lines)

    async def cmd_preset(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        if len(args) < 2 or args[0] not in {"new", "edit", "show", "use", "delete", "history"}:
            raise UsageError()
        action, name = args[0], args[1].lower()
        if not PRESET_NAME.match(name):
            raise UsageError("A preset name is 1–64 of a–z, 0–9, _ and -.")
        text = rest.split(maxsplit=2)[2] if len(rest.split(maxsplit=2)) > 2 else ""
        async with self._sessions.begin() as session:
            current = await admin_store.preset(session, name)
            if action in {"new", "edit"}:
                if (action == "new") == (current is not None):
                    raise UsageError(f"Preset {name} {'exists' if current else 'does not exist'}.")
                version = await admin_store.save_preset(session, actor, name, _prompt_text(text))
                return f"Preset {name} saved (version {version})."
            if action == "history":
                versions = await admin_store.preset_history(session, name)
                if not versions:
                    raise LookupError(f"No preset {name}.")
                lines = [
                    f"v{p.version} {'(deleted)' if p.deleted else _excerpt(p.text)}"
                    for p in versions
                ]
                return f"History of {name}:\n" + "\n".join(lines)
            if current is None:
                raise LookupError(f"No preset {name}.")
            if action == "show":
                return f"Preset {name} (v{current.version}):\n{current.text}"
            if action == "delete":
                await admin_store.save_preset(session, actor, name, current.text, deleted=True)
                return f"Preset {name} deleted (its versions are kept)."
            chat = await self._chat_row(session, message)
            await admin_store.set_chat_field(session, actor, chat.id, "preset", name)
            await admin_store.set_chat_field(session, actor, chat.id, "system_prompt", None)
            return f"This chat now uses preset {name}."

    # --- model and sampling ----------------------------------------------------------------

    async def cmd_set(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        name, value = _parameter(args, rest)
        stored = json.dumps(value) if name == "stop" and value is not None else value
        async with self._sessions.begin() as session:
            chat = await self._chat_row(session, message)
            column = PARAMETERS[name][1]
            await admin_store.set_chat_field(session, actor, chat.id, column, stored)
        return f"{name} for this chat: {_shown(value, 'the global default')}."

    async def cmd_setglobal(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        name, value = _parameter(args, rest)
        async with self._sessions.begin() as session:
            await admin_store.set_override(session, actor, name, value)
        return f"{name} for every chat: {_shown(value, 'the configured default')}."

    async def cmd_settings(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        async with self._sessions.begin() as session:
            chat = await self._chat_row(session, message)
            overrides = await admin_store.overrides(session)
        lines = []
        for name in PARAMETERS:
            value, source = effective_parameter(name, self._settings, overrides, chat)
            lines.append(f"{name}: {_shown(value, 'server default')} ({source})")
        lines.append(f"profile: {chat.profile or 'default'}")
        lines.append(f"memory: {chat.memory_mode}")
        return "Settings in force here:\n" + "\n".join(lines)

    async def cmd_profile(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        async with self._sessions.begin() as session:
            chat = await self._chat_row(session, message)
            return await profile_command(self._settings, session, chat, args, actor)

    # --- access ----------------------------------------------------------------------------

    async def _user_flag(self, args: list[str], actor: int, flag: str, value: bool) -> int:
        user_id = _one_id(args)
        async with self._sessions.begin() as session:
            await admin_store.set_user_flag(session, actor, user_id, flag, value)
        return user_id

    async def cmd_allow(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        return f"User {await self._user_flag(args, actor, 'is_allowed', True)} may chat."

    async def cmd_disallow(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        return f"User {await self._user_flag(args, actor, 'is_allowed', False)} is off the list."

    async def cmd_block(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        return f"User {await self._user_flag(args, actor, 'is_blocked', True)} is blocked."

    async def cmd_unblock(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        return f"User {await self._user_flag(args, actor, 'is_blocked', False)} is unblocked."

    async def _chat_flag(self, message: Message, args: list[str], actor: int, value: bool) -> int:
        chat_id = _one_id(args) if args else message.chat_id
        async with self._sessions.begin() as session:
            if not args:
                await self._chat_row(session, message)
            await admin_store.set_chat_field(session, actor, chat_id, "is_allowed", value)
        return chat_id

    async def cmd_allowchat(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        return f"Everyone in chat {await self._chat_flag(message, args, actor, True)} may chat."

    async def cmd_disallowchat(
        self, message: Message, args: list[str], rest: str, actor: int
    ) -> str:
        chat_id = await self._chat_flag(message, args, actor, False)
        return f"Chat {chat_id} is off the allowlist."

    # --- memory and stats ------------------------------------------------------------------

    async def cmd_memory(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        if args not in (["chat"], ["user"]):
            raise UsageError()
        if message.chat.type == "private":
            return "Memory modes apply to groups; a private chat always has its own memory."
        async with self._sessions.begin() as session:
            chat = await self._chat_row(session, message)
            await admin_store.set_chat_field(session, actor, chat.id, "memory_mode", args[0])
        return f"Memory here is now per {args[0]}; it applies from the next message."

    async def cmd_summary(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        choices = {"on": True, "off": False, "default": None}
        if len(args) != 1 or args[0].lower() not in choices:
            raise UsageError()
        value = choices[args[0].lower()]
        async with self._sessions.begin() as session:
            chat = await self._chat_row(session, message)
            await admin_store.set_chat_field(session, actor, chat.id, "summary_enabled", value)
        if value is None:
            state = "on" if self._settings.summary_enabled else "off"
            return f"Rolling summary here follows the default (SUMMARY_ENABLED: {state})."
        return f"Rolling summary here is now {'on' if value else 'off'}."

    async def cmd_stats(self, message: Message, args: list[str], rest: str, actor: int) -> str:
        if len(args) > 1 or (
            args and not (ASCII_ID.fullmatch(args[0]) and 1 <= int(args[0]) <= 366)
        ):
            raise UsageError()
        days = int(args[0]) if args else 7
        async with self._sessions() as session:
            s = await admin_store.stats(session, days)
        lines = [f"Users: {s.users} · chats: {s.chats} · messages: {s.messages}"]
        lines += [f"Tokens by day (last {days}):"] + [f"  {d}: {t}" for d, t in s.tokens_by_day]
        lines += ["Top users by tokens:"] + [
            f"  {uid} {name}: {t}" for uid, name, t in s.tokens_by_user
        ]
        return "\n".join(lines)


def _prompt_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise UsageError("The prompt text is missing.")
    if len(text) > MAX_PROMPT:
        raise UsageError(f"A prompt is at most {MAX_PROMPT} characters.")
    return text


def _parameter(args: list[str], rest: str) -> tuple[str, Any]:
    if len(args) < 2:
        raise UsageError()
    name = args[0].lower()
    return name, parse_parameter(name, rest.split(maxsplit=1)[1])


def _one_id(args: list[str]) -> int:
    if len(args) != 1 or not ASCII_ID.fullmatch(args[0]) or len(args[0]) > 20:
        raise UsageError("Give one numeric Telegram id.")
    return int(args[0])


def _shown(value: Any, default: str) -> str:
    return default if value is None else json.dumps(value, ensure_ascii=False)


def _excerpt(text: str, deleted: bool = False) -> str:
    if deleted:
        return "(deleted)"
    flat = " ".join(text.split())
    return flat if len(flat) <= 60 else flat[:57] + "…"
