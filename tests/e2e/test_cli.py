"""The command line as an operator uses it: `python -m bot run` / `migrate` in a subprocess."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from sqlalchemy import inspect

from bot.db.engine import create_engine
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from tests.e2e.chat import shows

SETTINGS_VARS = ("TELEGRAM_", "OPENAI_", "DATABASE_URL", "MODEL", "SYSTEM_PROMPT", "LOG_LEVEL")


def _env(**values: str) -> dict[str, str]:
    """The current environment without any bot setting, plus `values`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(SETTINGS_VARS)}
    env.update(values)
    return env


async def _run_cli(cwd: Path, env: dict[str, str], *args: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, output.decode()


async def test_run_without_a_token_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    code, output = await _run_cli(tmp_path, _env(), "run")
    assert code == 2
    assert output.strip().splitlines() == ["config error: TELEGRAM_BOT_TOKEN is not set"]


async def test_a_malformed_setting_is_named_and_exits_2(tmp_path: Path) -> None:
    env = _env(TELEGRAM_BOT_TOKEN="123:abc", CONTEXT_TOKENS="lots")
    code, output = await _run_cli(tmp_path, env, "run")
    assert code == 2
    [line] = output.strip().splitlines()
    assert line.startswith("config error: CONTEXT_TOKENS:")
    assert "Traceback" not in output


async def test_help_describes_each_command(tmp_path: Path) -> None:
    for command in ("run", "migrate"):
        code, output = await _run_cli(tmp_path, _env(), command, "--help")
        assert code == 0
        assert f"usage: python -m bot {command}" in output


async def test_migrate_creates_the_schema(tmp_path: Path, database_url: str) -> None:
    env = _env(TELEGRAM_BOT_TOKEN="123:abc", DATABASE_URL=database_url)
    code, output = await _run_cli(tmp_path, env, "migrate")
    assert code == 0, output
    engine = create_engine(database_url)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    await engine.dispose()
    assert {"users", "chats", "conversations", "messages", "usage"} <= tables


async def test_run_serves_a_conversation_and_logs_no_secrets(
    tmp_path: Path, database_url: str, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    env = _env(
        TELEGRAM_BOT_TOKEN=telegram.token,
        TELEGRAM_BASE_URL=telegram.base_url.removesuffix("/bot"),
        OPENAI_BASE_URL=model.base_url,
        OPENAI_API_KEY="sk-test-key",
        DATABASE_URL=database_url,
        LOG_LEVEL="DEBUG",
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "run",
        cwd=tmp_path,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        telegram.send_text(42, "Hello from a real process")
        await telegram.wait_for(lambda: shows(telegram, 42, "Echo: Hello from a real process"), 30)
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 30)
    log = output.decode()
    assert process.returncode == 0, log
    assert "polling" in log
    secret = telegram.token.split(":", 1)[1]
    assert secret not in log, "the bot token must never be logged"
    assert "sk-test-key" not in log, "the API key must never be logged"
