"""The /profile admin command: list the backends of MODEL_PROFILES, or switch a chat to one."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.config import Settings
from bot.db import admin_store
from bot.db.models import Chat
from bot.model_profile import DEFAULT_PROFILE


async def profile_command(
    settings: Settings, session: AsyncSession, chat: Chat, args: list[str], actor: int
) -> str:
    """The answer to `/profile [name]`; raises ValueError/LookupError for the usage line."""
    profiles = settings.model_profiles
    if len(args) > 1:
        raise ValueError()
    if not args:
        current = chat.profile if chat.profile in profiles else DEFAULT_PROFILE
        lines = [f"• {DEFAULT_PROFILE}: {settings.model} (the plain settings)"]
        lines += [f"• {name}: {p.model} ({p.api})" for name, p in profiles.items()]
        return f"Profile here: {current}\nProfiles:\n" + "\n".join(lines)
    name = args[0].lower()
    if name != DEFAULT_PROFILE and name not in profiles:
        known = ", ".join([DEFAULT_PROFILE, *profiles])
        raise LookupError(f"No profile {name!r}; configured: {known}.")
    value = None if name == DEFAULT_PROFILE else name
    await admin_store.set_chat_field(session, actor, chat.id, "profile", value)
    # A model chosen for the old backend means nothing to the new one.
    if chat.model is not None:
        await admin_store.set_chat_field(session, actor, chat.id, "model", None)
    model = profiles[name].model if value else settings.model
    return f"This chat now uses profile {name} (model {model}) from the next message."
