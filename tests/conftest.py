"""Shared fixtures: a fresh database per test (SQLite file, or a new PostgreSQL database when
DATABASE_URL points at PostgreSQL), the two emulators, and the bot running against them."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from bot.config import Settings
from bot.telegram.app import BotRuntime
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator

TEST_DATABASE_URL = os.environ.get("DATABASE_URL", "")


def _is_postgres() -> bool:
    return TEST_DATABASE_URL.startswith("postgresql")


def pytest_report_header() -> str:
    return f"database: {'PostgreSQL ' + TEST_DATABASE_URL if _is_postgres() else 'SQLite'}"


@pytest.fixture
async def database_url(tmp_path: Path) -> AsyncIterator[str]:
    """An empty database for one test."""
    if not _is_postgres():
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        return
    base = make_url(TEST_DATABASE_URL)
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin_dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def telegram() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator() as emulator:
        yield emulator


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator() as emulator:
        yield emulator


SettingsFactory = Callable[..., Settings]


@pytest.fixture
def make_settings(
    database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> SettingsFactory:
    """Settings pointing at the emulators; keyword arguments override fields."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "telegram_bot_token": telegram.token,
            "telegram_base_url": telegram.base_url.removesuffix("/bot"),
            "openai_base_url": model.base_url,
            "openai_api_key": "sk-test-key",
            "model": "gpt-4o-mini",
            "database_url": database_url,
            "system_prompt": "You are a test assistant.",
            "edit_interval": 1.0,
            "group_edit_interval": 1.0,
            "openai_timeout": 5.0,
            "log_level": "DEBUG",
            # No built-in tools unless a test asks for them: request bodies stay as they were.
            "builtin_tools": "",
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
async def settings(make_settings: SettingsFactory) -> Settings:
    return make_settings()


@pytest.fixture
async def bot(settings: Settings) -> AsyncIterator[BotRuntime]:
    """The real bot, polling the Bot API emulator and calling the model emulator."""
    async with BotRuntime(settings) as runtime:
        yield runtime
