"""Admins switch a chat between the model profiles of MODEL_PROFILES with /profile."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bot.telegram.app import BotRuntime
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask
from tests.e2e.test_admin import ADMIN, ALICE, audit_rows, command

PROFILES = {
    "big": {"model": "gpt-4o", "api": "responses", "context_tokens": 1600},
    "reasoner": {"model": "o4-mini"},
}


@pytest.fixture
async def profiled_bot(make_settings: SettingsFactory) -> AsyncIterator[BotRuntime]:
    settings = make_settings(admin_user_ids=frozenset({ADMIN}), model_profiles=PROFILES)
    async with BotRuntime(settings) as runtime:
        yield runtime


async def test_an_admin_switches_a_chat_between_profiles(
    profiled_bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    listing = await command(telegram, ADMIN, "/profile", ADMIN)
    assert listing.splitlines() == [
        "Profile here: default",
        "Profiles:",
        "• default: gpt-4o-mini (the plain settings)",
        "• big: gpt-4o (responses)",
        "• reasoner: o4-mini (chat)",
    ]
    await command(telegram, ADMIN, "/set model gpt-4o-mini", ADMIN)
    answer = await command(telegram, ADMIN, "/profile big", ADMIN)
    assert answer == "This chat now uses profile big (model gpt-4o) from the next message."
    await ask(telegram, ADMIN, "on big")
    assert model.requests[-1].path == "/v1/responses"
    assert model.requests[-1].body["model"] == "gpt-4o"
    await ask(telegram, ALICE, "elsewhere")  # another chat stays on the default profile
    assert (model.requests[-1].path, model.requests[-1].body["model"]) == (
        "/v1/chat/completions",
        "gpt-4o-mini",
    )
    assert "profile: big" in await command(telegram, ADMIN, "/settings", ADMIN)

    await command(telegram, ADMIN, "/profile reasoner", ADMIN)
    await ask(telegram, ADMIN, "think")
    body = model.chat_requests()[-1]
    assert body["model"] == "o4-mini" and "max_completion_tokens" in body
    # The history written under another profile goes along.
    assert [m["content"] for m in body["messages"][1:]] == ["on big", "Echo: on big", "think"]

    await command(telegram, ADMIN, "/profile default", ADMIN)
    await ask(telegram, ADMIN, "back")
    assert model.chat_requests()[-1]["model"] == "gpt-4o-mini"
    changes = [
        (r.action, r.old_value, r.new_value)
        for r in await audit_rows(database_url)
        if r.action in ("set_chat_profile", "set_chat_model")
    ]
    assert changes == [
        ("set_chat_model", None, '"gpt-4o-mini"'),
        ("set_chat_profile", None, '"big"'),
        ("set_chat_model", '"gpt-4o-mini"', None),  # a chat's model means nothing elsewhere
        ("set_chat_profile", '"big"', '"reasoner"'),
        ("set_chat_profile", '"reasoner"', None),
    ]


async def test_an_unknown_profile_is_refused_with_the_configured_names(
    profiled_bot: BotRuntime, telegram: BotAPIEmulator, database_url: str
) -> None:
    answer = await command(telegram, ADMIN, "/profile huge", ADMIN)
    assert answer.startswith("No profile 'huge'; configured: default, big, reasoner.")
    assert await audit_rows(database_url) == []


async def test_the_profile_context_window_trims_the_history(
    profiled_bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    await command(telegram, ADMIN, "/profile big", ADMIN)
    words = " ".join(["memory"] * 150)  # ~150 tokens: three fit into 1600 - 1024, not seven
    for n in range(4):
        await ask(telegram, ADMIN, f"{n} {words}")
    sent = model.bodies("/v1/responses")[-1]["input"]
    assert [m["content"][:8] for m in sent] == ["2 memory", "Echo: 2 ", "3 memory"]
    assert model.count_prompt_tokens(sent) <= 1600 - 1024
