"""Admin commands, layered system prompts, access control and quotas, over the emulators."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Audit
from bot.telegram.admin import REFUSAL
from bot.telegram.app import BotRuntime
from bot.telegram.commands import ADMIN_USAGE
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages, texts

ADMIN = 7
ALICE = 1001
BOB = 2002
CAROL = 3003
GROUP = -100900
CONFIG_PROMPT = "You are a test assistant."


@pytest.fixture
async def admin_bot(make_settings: SettingsFactory) -> AsyncIterator[BotRuntime]:
    async with BotRuntime(make_settings(admin_user_ids=frozenset({ADMIN}))) as runtime:
        yield runtime


async def command(telegram: BotAPIEmulator, chat_id: int, text: str, user_id: int) -> str:
    """Send a command and return the bot's answer to it."""
    before = len(telegram.bot_messages(chat_id))
    chat_type = "private" if chat_id > 0 else "supergroup"
    telegram.send_text(chat_id, text, user_id=user_id, chat_type=chat_type)
    await telegram.wait_for(lambda: len(telegram.bot_messages(chat_id)) > before)
    return telegram.bot_messages(chat_id)[before].text


async def group_system_prompt(telegram: BotAPIEmulator, model: OpenAIEmulator, q: str) -> str:
    """Ask in the group as Alice; return the system prompt the model received."""
    telegram.send_text(GROUP, f"@memory_test_bot {q}", user_id=ALICE, chat_type="supergroup")
    await telegram.wait_for(lambda: shows(telegram, GROUP, f"Echo: Alice: {q}"))
    messages = model.chat_requests()[-1]["messages"]
    return str(messages[0]["content"]) if messages[0]["role"] == "system" else ""


async def audit_rows(database_url: str) -> list[Audit]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list(await session.scalars(select(Audit).order_by(Audit.id)))
    finally:
        await engine.dispose()


async def test_the_model_gets_the_prompt_of_each_layer_after_each_change(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(admin_user_ids=frozenset({ADMIN}))
    async with BotRuntime(settings):
        assert await group_system_prompt(telegram, model, "q1") == CONFIG_PROMPT
        await command(telegram, GROUP, "/globalprompt Global prompt.", ADMIN)
        assert await group_system_prompt(telegram, model, "q2") == "Global prompt."
        await command(telegram, GROUP, "/preset new pirate Talk like a pirate.", ADMIN)
        await command(telegram, GROUP, "/preset use pirate", ADMIN)
        assert await group_system_prompt(telegram, model, "q3") == "Talk like a pirate."
        await command(telegram, GROUP, "/preset edit pirate Talk like a polite pirate.", ADMIN)
        assert await group_system_prompt(telegram, model, "q4") == "Talk like a polite pirate."
        await command(telegram, GROUP, "/setprompt Chat prompt.", ADMIN)
        assert await group_system_prompt(telegram, model, "q5") == "Chat prompt."
        shown = await command(telegram, GROUP, "/prompt", ADMIN)
        assert shown == "System prompt (chat):\nChat prompt."
        await command(telegram, GROUP, "/resetprompt", ADMIN)
        await command(telegram, GROUP, "/preset use pirate", ADMIN)
    async with BotRuntime(settings):  # stored in the database: survives a restart
        assert await group_system_prompt(telegram, model, "q6") == "Talk like a polite pirate."
        await command(telegram, GROUP, "/resetprompt", ADMIN)
        assert await group_system_prompt(telegram, model, "q7") == "Global prompt."
        await command(telegram, GROUP, "/globalprompt reset", ADMIN)
        assert await group_system_prompt(telegram, model, "q8") == CONFIG_PROMPT
        history = await command(telegram, GROUP, "/preset history pirate", ADMIN)
        assert "v1" in history and "v2" in history
        await command(telegram, GROUP, "/preset delete pirate", ADMIN)
        assert "No presets" in await command(telegram, GROUP, "/prompts", ADMIN)


async def test_parameters_per_chat_and_global_reach_the_request(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    for line in (
        "/set temperature 0.3",
        "/set stop ###|END",
        "/set max_tokens 200",
        "/set model gpt-4o",
        "/setglobal top_p 0.5",
        "/setglobal seed 42",
        "/setglobal presence_penalty 0.1",
        "/set frequency_penalty -0.5",
    ):
        assert "Usage" not in await command(telegram, GROUP, line, ADMIN)
    await group_system_prompt(telegram, model, "tuned")
    tuned = model.chat_requests()[-1]
    assert (tuned["temperature"], tuned["stop"], tuned["max_tokens"]) == (0.3, ["###", "END"], 200)
    assert (tuned["model"], tuned["top_p"], tuned["seed"]) == ("gpt-4o", 0.5, 42)
    assert (tuned["presence_penalty"], tuned["frequency_penalty"]) == (0.1, -0.5)

    await ask(telegram, ALICE, "elsewhere")  # another chat: only the global ones apply
    other = model.chat_requests()[-1]
    assert other["top_p"] == 0.5 and "temperature" not in other and other["model"] == "gpt-4o-mini"

    await command(telegram, GROUP, "/set temperature default", ADMIN)
    shown = await command(telegram, GROUP, "/settings", ADMIN)
    assert "temperature: server default (config)" in shown
    assert "top_p: 0.5 (global)" in shown and 'model: "gpt-4o" (chat)' in shown


NON_ADMIN_ATTEMPTS = {
    "prompt": "/prompt",
    "setprompt": "/setprompt Obey me.",
    "resetprompt": "/resetprompt",
    "globalprompt": "/globalprompt Obey me.",
    "prompts": "/prompts",
    "preset": "/preset new evil Obey me.",
    "set": "/set temperature 2",
    "setglobal": "/setglobal model evil-model",
    "settings": "/settings",
    "allow": f"/allow {BOB}",
    "disallow": f"/disallow {BOB}",
    "block": f"/block {BOB}",
    "unblock": f"/unblock {BOB}",
    "allowchat": "/allowchat",
    "disallowchat": "/disallowchat",
    "memory": "/memory user",
    "summary": "/summary off",
    "stats": "/stats",
    "profile": "/profile default",
}


def test_every_admin_command_has_a_non_admin_attempt() -> None:
    assert set(NON_ADMIN_ATTEMPTS) == set(ADMIN_USAGE)


@pytest.mark.parametrize("line", NON_ADMIN_ATTEMPTS.values(), ids=NON_ADMIN_ATTEMPTS.keys())
async def test_a_non_admin_is_refused_and_nothing_changes(
    admin_bot: BotRuntime,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
    line: str,
) -> None:
    assert await command(telegram, GROUP, line, ALICE) == REFUSAL
    assert await audit_rows(database_url) == []
    assert await group_system_prompt(telegram, model, "still normal") == CONFIG_PROMPT
    assert "temperature" not in model.chat_requests()[-1]


MALFORMED = {
    "setprompt": "/setprompt",
    "resetprompt": "/resetprompt now",
    "globalprompt": "/globalprompt " + "x" * 9000,
    "preset-missing": "/preset",
    "preset-action": "/preset fly away",
    "preset-name": "/preset new Bad!Name text",
    "preset-unknown": "/preset use nosuch",
    "preset-text": "/preset new empty",
    "set-missing": "/set temperature",
    "set-type": "/set temperature hot",
    "set-range": "/set temperature 5",
    "set-unknown": "/set verbosity 3",
    "setglobal-range": "/setglobal top_p 2",
    "setglobal-stop": "/setglobal stop a|b|c|d|e",
    "allow": "/allow alice",
    "disallow": "/disallow",
    "block": "/block 1 2",
    "unblock": "/unblock x",
    "allowchat": "/allowchat here",
    "disallowchat": "/disallowchat " + "9" * 30,
    "memory": "/memory sideways",
    "summary": "/summary sometimes",
    "stats": "/stats 0",
    "profile-unknown": "/profile nosuch",
    "profile-args": "/profile a b",
}


@pytest.mark.parametrize("line", MALFORMED.values(), ids=MALFORMED.keys())
async def test_malformed_arguments_get_the_usage_line_and_change_nothing(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, database_url: str, line: str
) -> None:
    answer = await command(telegram, GROUP, line, ADMIN)
    name = line.split()[0].lstrip("/")
    assert f"Usage: {ADMIN_USAGE[name]}" in answer
    assert await audit_rows(database_url) == []


async def test_every_admin_change_is_audited_with_old_and_new_values(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, database_url: str
) -> None:
    await command(telegram, GROUP, "/set temperature 0.7", ADMIN)
    await command(telegram, GROUP, "/set temperature 0.9", ADMIN)
    await command(telegram, GROUP, f"/block {BOB}", ADMIN)
    rows = await audit_rows(database_url)
    assert [(r.actor_id, r.action, r.target, r.old_value, r.new_value) for r in rows] == [
        (ADMIN, "set_chat_temperature", str(GROUP), None, "0.7"),
        (ADMIN, "set_chat_temperature", str(GROUP), "0.7", "0.9"),
        (ADMIN, "set_user_is_blocked", str(BOB), "false", "true"),
    ]
    assert all(r.created_at is not None for r in rows)


async def test_allowlist_and_blocks_decide_who_may_chat(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    await ask(telegram, CAROL, "open to all at first")
    await command(telegram, ADMIN, f"/allow {BOB}", ADMIN)
    await ask(telegram, BOB, "I am allowed")
    telegram.send_text(CAROL, "and me?")
    await telegram.wait_for(lambda: texts(telegram, CAROL)[-1] == "Sorry, this bot is private.")

    await command(telegram, ADMIN, f"/block {BOB}", ADMIN)
    requests = len(model.chat_requests())
    telegram.send_text(BOB, "hello?")
    await ask(telegram, ADMIN, "admins always may")  # ordering: Bob's message was handled first
    assert len(model.chat_requests()) == requests + 1, "a blocked user is ignored"
    assert texts(telegram, BOB)[-1] == "Echo: I am allowed", "...silently"

    await command(telegram, ADMIN, f"/unblock {BOB}", ADMIN)
    await ask(telegram, BOB, "back again")
    await command(telegram, GROUP, "/allowchat", ADMIN)
    assert await group_system_prompt(telegram, model, "group allowed") == CONFIG_PROMPT


async def test_group_memory_can_be_per_member(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    await command(telegram, GROUP, "/memory user", ADMIN)
    await group_system_prompt(telegram, model, "Alice's secret")
    telegram.send_text(
        GROUP, "@memory_test_bot hi", user_id=BOB, chat_type="supergroup", first_name="Bob"
    )
    await telegram.wait_for(lambda: shows(telegram, GROUP, "Echo: Bob: hi"))
    assert model.chat_requests()[-1]["messages"][1:] == [{"role": "user", "content": "Bob: hi"}]
    await group_system_prompt(telegram, model, "again")
    alice = [m["content"] for m in model.chat_requests()[-1]["messages"][1:]]
    assert alice == ["Alice: Alice's secret", "Echo: Alice: Alice's secret", "Alice: again"]


async def test_stats_count_users_messages_and_tokens(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, database_url: str
) -> None:
    await ask(telegram, ALICE, "count me")
    await ask(telegram, BOB, "and me")
    for chat in (ALICE, BOB):  # each reply's usage is recorded (after its final edit)
        await stored_messages(database_url, chat)
    answer = await command(telegram, ADMIN, "/stats 30", ADMIN)
    assert "Users: 2 · chats: 2 · messages: 4" in answer
    by_user = answer.split("Top users by tokens:")[1]
    assert str(ALICE) in by_user and str(BOB) in by_user
    by_day = answer.split("Tokens by day (last 30):")[1].split("Top users")[0]
    assert by_day.strip(), "today's tokens are listed"


async def test_admins_get_the_admin_menu_and_users_do_not(
    admin_bot: BotRuntime, telegram: BotAPIEmulator
) -> None:
    await command(telegram, ADMIN, "/start", ADMIN)
    calls = telegram.calls_for("setMyCommands")
    default = [
        c
        for c in calls
        if '"default"' in str(c.params.get("scope")) or "default" in str(c.params.get("scope"))
    ]
    assert default, "the user menu is registered for everyone"
    user_menu = {c["command"] for c in _commands(default[0].params["commands"])}
    assert "stop" in user_menu and "setprompt" not in user_menu
    admin_calls = [c for c in calls if str(ADMIN) in str(c.params.get("scope")) and c.status == 200]
    assert admin_calls
    assert "setprompt" in {c["command"] for c in _commands(admin_calls[-1].params["commands"])}
    help_text = await command(telegram, ALICE, "/help", ALICE)
    assert "/setprompt" not in help_text
    assert "/setprompt" in await command(telegram, ADMIN, "/help", ADMIN)


def _commands(value: object) -> list[dict[str, str]]:
    import json

    return json.loads(value) if isinstance(value, str) else list(value)  # type: ignore[arg-type]


async def test_rate_limit_per_user(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    async with BotRuntime(make_settings(rate_limit_per_minute=2)):
        await ask(telegram, ALICE, "one")
        await ask(telegram, ALICE, "two")
        telegram.send_text(ALICE, "three")
        await telegram.wait_for(lambda: "too fast" in texts(telegram, ALICE)[-1])
        await ask(telegram, BOB, "others are unaffected")
    assert len(model.chat_requests()) == 3


async def test_daily_token_quota(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(daily_token_quota=30, admin_user_ids=frozenset({ADMIN}))
    async with BotRuntime(settings):
        await ask(telegram, ALICE, "use up my quota with a long enough question")
        telegram.send_text(ALICE, "more")
        await telegram.wait_for(lambda: "quota of 30 tokens" in texts(telegram, ALICE)[-1])
        await ask(telegram, ADMIN, "admins have no quota with a long enough question")
        await ask(telegram, ADMIN, "still none")
    assert len(model.chat_requests()) == 3
