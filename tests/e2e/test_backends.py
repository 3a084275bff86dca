"""Each API mode and provider quirk through the real bot, over both emulators: what the user
sees, what is stored, and the exact request the model server received."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Status
from bot.db.models import Usage as UsageRow
from bot.errors import LLMBadRequestError
from bot.notices import Code, Notice
from bot.telegram.app import BotRuntime
from bot.wording import render
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages

ALICE = 1001
PROMPT = "You are a test assistant."


async def usage_rows(database_url: str) -> list[UsageRow]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return list(await session.scalars(select(UsageRow).order_by(UsageRow.id)))
    finally:
        await engine.dispose()


def user_field(body: dict[str, Any]) -> str:
    value = body["user"]
    assert isinstance(value, str) and len(value) == 32 and str(ALICE) not in value
    return value


async def test_chat_mode_sends_every_configured_parameter_and_never_n(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(
        temperature=0.4,
        top_p=0.8,
        presence_penalty=0.3,
        frequency_penalty=-0.3,
        seed=11,
        logit_bias={"1734": -100},
        max_reply_tokens=300,
    )
    async with BotRuntime(settings):
        await ask(telegram, ALICE, "all knobs")
    [body] = model.chat_requests()
    assert body == {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "system", "content": PROMPT},
            {"role": "user", "content": "all knobs"},
        ],
        "max_tokens": 300,
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.4,
        "top_p": 0.8,
        "presence_penalty": 0.3,
        "frequency_penalty": -0.3,
        "logit_bias": {"1734": -100.0},
        "seed": 11,
        "user": user_field(body),
    }


async def test_a_reasoning_model_thinks_apart_and_gets_max_completion_tokens(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    model.enqueue(Reply(text="Forty-two.", reasoning="The user wants the answer to everything."))
    async with BotRuntime(make_settings(model="o3-mini", temperature=0.7, seed=3)):
        telegram.send_text(ALICE, "Answer?")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Forty-two."))
    assert all("user wants" not in m.text for m in telegram.bot_messages(ALICE))
    [body] = model.chat_requests()
    assert body == {
        "model": "o3-mini",
        "messages": [
            {"role": "system", "content": PROMPT},
            {"role": "user", "content": "Answer?"},
        ],
        "max_completion_tokens": 1024,
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": 3,
        "user": user_field(body),
    }
    stored = await stored_messages(database_url, ALICE)
    assert [m.content for m in stored] == ["Answer?", "Forty-two."]


async def test_azure_openai_gets_the_deployment_url_and_api_key_header(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.azure_deployments["prod-mini"] = "gpt-4o-mini"
    settings = make_settings(
        openai_base_url=model.base_url.removesuffix("/v1"),
        azure_api_version=model.azure_api_version,
        azure_deployment="prod-mini",
    )
    async with BotRuntime(settings):
        await ask(telegram, ALICE, "hello azure")
    [sent] = model.requests
    assert sent.path == "/openai/deployments/prod-mini/chat/completions"
    assert sent.query == {"api-version": model.azure_api_version}
    assert sent.headers["api-key"] == "sk-test-key" and "authorization" not in sent.headers


async def test_a_wrong_azure_api_version_is_reported_not_retried(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    settings = make_settings(
        openai_base_url=model.base_url.removesuffix("/v1"), azure_api_version="1999-01-01"
    )
    async with BotRuntime(settings):
        telegram.send_text(ALICE, "hello")
        await telegram.wait_for(lambda: shows(telegram, ALICE, render(LLMBadRequestError.problem)))
    assert len(model.requests) == 1


async def test_completions_mode_sends_the_remembered_conversation_as_one_prompt(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.models.append("gpt-3.5-turbo-instruct")
    model.enqueue(" Paris.\nUser: and you?", " About 2 million.")
    settings = make_settings(
        openai_api="completions",
        model="gpt-3.5-turbo-instruct",
        completions_stop=["\nUser:", "\nAssistant:"],
        logit_bias={"50256": -100},
        frequency_penalty=0.5,
    )
    async with BotRuntime(settings):
        telegram.send_text(ALICE, "Capital of France?")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Paris."))
        telegram.send_text(ALICE, "Population?")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "About 2 million."))
    second = model.bodies("/v1/completions")[1]
    assert second == {
        "model": "gpt-3.5-turbo-instruct",
        "prompt": f"{PROMPT}\n\nUser: Capital of France?\n\nAssistant: Paris.\n\n"
        "User: Population?\n\nAssistant:",
        "max_tokens": 1024,
        "stream": True,
        "stream_options": {"include_usage": True},
        "frequency_penalty": 0.5,
        "logit_bias": {"50256": -100.0},
        "user": user_field(second),
        "stop": ["\nUser:", "\nAssistant:"],
    }


async def test_responses_mode_sends_instructions_and_history_and_stores_usage(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    settings = make_settings(
        openai_api="responses",
        temperature=0.2,
        stop=None,
        openai_extra_headers={"X-Title": "memorybot"},
    )
    async with BotRuntime(settings):
        await ask(telegram, ALICE, "one")
        await ask(telegram, ALICE, "two")
    second = model.bodies("/v1/responses")[1]
    assert second == {
        "model": "gpt-4o-mini",
        "instructions": PROMPT,
        "input": [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": "Echo: one"},
            {"role": "user", "content": "two"},
        ],
        "max_output_tokens": 1024,
        "stream": True,
        "store": False,
        "temperature": 0.2,
        "user": user_field(second),
    }
    assert model.requests[-1].headers["x-title"] == "memorybot"
    rows = await usage_rows(database_url)
    assert [r.reported for r in rows] == [True, True]
    assert rows[1].prompt_tokens == model.count_prompt_tokens(
        [{"role": "system", "content": PROMPT}, *second["input"]]
    )


async def test_responses_mode_shows_a_cut_reply_and_a_failed_one(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    model.enqueue(
        Reply(text="A long story", finish_reason="length"),
        Reply(text="Half of it and more", chunk_chars=8, fail_after=1, error_code="invalid_prompt"),
        Reply(fail_after=0, fail_event="error", error_code="invalid_prompt", text="never"),
    )
    async with BotRuntime(make_settings(openai_api="responses")):
        telegram.send_text(ALICE, "story")
        await telegram.wait_for(
            lambda: shows(telegram, ALICE, f"A long story\n\n{render(Code.CUT_BY_LIMIT)}")
        )
        telegram.send_text(ALICE, "again")
        notice = render(Notice(Code.INTERRUPTED, {"reason": LLMBadRequestError.problem}))
        await telegram.wait_for(lambda: shows(telegram, ALICE, f"Half of\n\n{notice}"))
        telegram.send_text(ALICE, "once more")
        await telegram.wait_for(lambda: shows(telegram, ALICE, render(LLMBadRequestError.problem)))
    statuses = [m.status for m in await stored_messages(database_url, ALICE) if m.role != "user"]
    assert statuses == [Status.COMPLETE, Status.INTERRUPTED, Status.FAILED]


async def test_a_failed_response_before_any_text_is_retried(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(text="lost", fail_after=0))  # response.failed with server_error
    async with BotRuntime(make_settings(openai_api="responses")):
        await ask(telegram, ALICE, "retry me")
    assert len(model.bodies("/v1/responses")) == 2


async def test_a_server_with_pings_an_empty_first_delta_and_no_usage(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    quirky = Reply(
        text="Quirky but fine.",
        keepalive_comments=True,
        keepalive_text="ping",
        empty_first_delta=True,
        omit_usage=True,
    )
    model.enqueue(quirky)
    async with BotRuntime(make_settings()):
        telegram.send_text(ALICE, "hi")
        await telegram.wait_for(lambda: shows(telegram, ALICE, "Quirky but fine."))
    [row] = await usage_rows(database_url)
    assert not row.reported and row.completion_tokens > 0
