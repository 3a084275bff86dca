"""Who may use the bot, and how much: admins, allowlists, blocks, rate limit, daily quota."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.db import admin_store
from bot.notices import Code, Notice


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    BLOCKED = "blocked"  # ignored silently
    DENIED = "denied"  # told the bot is private


class Access:
    def __init__(self, settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._settings = settings
        self._sessions = sessions

    def is_admin(self, user_id: int | None) -> bool:
        return user_id is not None and user_id in self._settings.admin_user_ids

    async def verdict(self, user_id: int, chat_id: int | None) -> Verdict:
        """Admins always; blocked users never; else everyone, or only the allowlisted ones.

        The allowlist is ALLOWED_USER_IDS plus users and chats allowed by admins; while it is
        empty, everyone may chat.
        """
        if self.is_admin(user_id):
            return Verdict.ALLOWED
        async with self._sessions() as session:
            flags = await admin_store.access_flags(session, user_id, chat_id)
        if flags.user_blocked:
            return Verdict.BLOCKED
        if flags.user_allowed or user_id in self._settings.allowed_user_ids or flags.chat_allowed:
            return Verdict.ALLOWED
        if self._settings.allowed_user_ids or flags.allowlist_in_use:
            return Verdict.DENIED
        return Verdict.ALLOWED

    async def quota_problem(self, user_id: int) -> Notice | None:
        """Why a user may not chat now (over the rate limit or the daily quota); None if fine."""
        s = self._settings
        if self.is_admin(user_id) or not (s.rate_limit_per_minute or s.daily_token_quota):
            return None
        now = datetime.now(UTC)
        async with self._sessions() as session:
            if s.rate_limit_per_minute:
                recent = await admin_store.messages_since(
                    session, user_id, now - timedelta(minutes=1)
                )
                if recent >= s.rate_limit_per_minute:
                    return Notice(Code.TOO_FAST, {"limit": s.rate_limit_per_minute})
            if s.daily_token_quota:
                midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
                used = await admin_store.tokens_since(session, user_id, midnight)
                if used >= s.daily_token_quota:
                    return Notice(Code.QUOTA_USED, {"limit": s.daily_token_quota})
        return None
