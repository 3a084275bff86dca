"""Small helpers for end-to-end tests: talk to the bot as a user would, read what they'd see."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Message, Status
from emulators.bot_api import BotAPIEmulator

SETTLE_SECONDS = 10.0


async def ask(telegram: BotAPIEmulator, chat_id: int, text: str, **kwargs: Any) -> str:
    """Send `text` and wait for the default echo reply to be shown in full; return it."""
    telegram.send_text(chat_id, text, **kwargs)
    expected = f"Echo: {text}"
    await telegram.wait_for(lambda: shows(telegram, chat_id, expected), timeout=15)
    return expected


def shows(telegram: BotAPIEmulator, chat_id: int, text: str) -> bool:
    """Whether a bot message shows `text` (trimmed, as Telegram trims message text)."""
    return any(m.text == text.strip() for m in telegram.bot_messages(chat_id))


def texts(telegram: BotAPIEmulator, chat_id: int) -> list[str]:
    return [m.text for m in telegram.bot_messages(chat_id)]


async def stored_messages(database_url: str, chat_id: int) -> list[Message]:
    """Every stored message of a chat, oldest first, once no reply is still pending."""
    engine = create_engine(database_url)
    deadline = asyncio.get_running_loop().time() + SETTLE_SECONDS
    try:
        while True:
            async with create_sessionmaker(engine)() as session:
                rows = list(
                    await session.scalars(
                        select(Message).where(Message.chat_id == chat_id).order_by(Message.id)
                    )
                )
            if all(row.status != Status.PENDING for row in rows):
                return rows
            assert asyncio.get_running_loop().time() < deadline, "a reply stayed pending"
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()
