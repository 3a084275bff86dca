"""/set and /setglobal parsing edges: -0, digits of other scripts, stop sequence limits."""

from __future__ import annotations

import json
import math
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.chat_config import MAX_STOP_LENGTH
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Chat, GlobalSetting
from bot.telegram.app import BotRuntime
from bot.telegram.commands import ADMIN_USAGE
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from tests.conftest import SettingsFactory
from tests.e2e.test_admin import ADMIN, GROUP, audit_rows, command, group_system_prompt


@pytest.fixture
async def admin_bot(make_settings: SettingsFactory) -> AsyncIterator[BotRuntime]:
    async with BotRuntime(make_settings(admin_user_ids=frozenset({ADMIN}))) as runtime:
        yield runtime


async def stored_chat(database_url: str, chat_id: int) -> Chat:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            chat = await session.get(Chat, chat_id)
            assert chat is not None
            return chat
    finally:
        await engine.dispose()


async def global_settings(database_url: str) -> dict[str, str]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.execute(select(GlobalSetting.key, GlobalSetting.value))
            return {key: value for key, value in rows}
    finally:
        await engine.dispose()


async def test_minus_zero_is_stored_and_sent_as_zero(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    answer = await command(telegram, GROUP, "/set temperature -0", ADMIN)
    assert answer == "temperature for this chat: 0.0."
    assert await command(telegram, GROUP, "/setglobal presence_penalty -0.0", ADMIN) == (
        "presence_penalty for every chat: 0.0."
    )
    temperature = (await stored_chat(database_url, GROUP)).temperature
    assert temperature == 0 and math.copysign(1, temperature or 0) == 1
    assert (await global_settings(database_url))["presence_penalty"] == "0.0"
    await group_system_prompt(telegram, model, "cold")
    sent = model.chat_requests()[-1]
    assert math.copysign(1, sent["temperature"]) == 1
    assert math.copysign(1, sent["presence_penalty"]) == 1


NOT_ASCII = {
    "arabic-indic-float": ("/set temperature ١", "expected a number"),
    "arabic-indic-int": ("/set max_tokens ١٠٠", "expected an integer"),
    "devanagari-seed": ("/setglobal seed ४२", "expected an integer"),
    "fullwidth": ("/set top_p ０.５", "expected a number"),
    "underscore": ("/set max_tokens 1_000", "expected an integer"),
    "infinity": ("/setglobal frequency_penalty -inf", "expected a number"),
    "user-id": ("/allow ١٢٣", "Give one numeric Telegram id."),
    "stats-days": ("/stats ٣", ""),
}


@pytest.mark.parametrize("line, detail", NOT_ASCII.values(), ids=NOT_ASCII.keys())
async def test_digits_of_other_scripts_are_refused_with_the_usage_line(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, database_url: str, line: str, detail: str
) -> None:
    answer = await command(telegram, GROUP, line, ADMIN)
    name = line.split()[0].lstrip("/")
    assert answer == (f"{detail}\n" if detail else "") + f"Usage: {ADMIN_USAGE[name]}"
    assert await audit_rows(database_url) == []


async def test_a_stop_sequence_over_the_cap_is_refused_in_one_line(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, database_url: str
) -> None:
    for line in (f"/set stop {'x' * 5000}", f"/setglobal stop ok|{'y' * (MAX_STOP_LENGTH + 1)}"):
        answer = await command(telegram, GROUP, line, ADMIN)
        first, usage = answer.split("\n")
        assert first == f"a stop sequence is at most {MAX_STOP_LENGTH} characters"
        assert usage.startswith("Usage: ")
    five = json.dumps(["a", "b", "c", "d", "e"])
    assert (await command(telegram, GROUP, f"/set stop {five}", ADMIN)).startswith(
        "at most 4 stop sequences\nUsage: "
    )
    assert await audit_rows(database_url) == []


async def test_four_stop_sequences_at_the_cap_reach_the_request(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    longest = "~" * MAX_STOP_LENGTH  # none of them in the echo, which the emulator stops at
    answer = await command(telegram, GROUP, f"/set stop #1|#2|#3|{longest}", ADMIN)
    assert "Usage" not in answer
    await group_system_prompt(telegram, model, "stops")
    assert model.chat_requests()[-1]["stop"] == ["#1", "#2", "#3", longest]
