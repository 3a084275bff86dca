"""Backend settings from the environment: MODEL_PROFILES, headers, Azure, reasoning, templates,
logit_bias; how profiles inherit from the plain settings; the dispatcher and per-chat resolve."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.chat_config import resolve
from bot.config import Settings, load_settings
from bot.db.models import Chat
from bot.errors import ConfigError
from bot.llm.backends import Backends
from bot.llm.endpoint import endpoints
from bot.llm.types import ChatMessage, ChatRequest

TOKEN = "123456789:AAE-secretTokenValue_xyz987"
PROFILES = {
    "fast": {"model": "gpt-4o"},
    "local": {
        "model": "llama3.1:8b",
        "base_url": "http://127.0.0.1:11434/v1",
        "context_tokens": 8192,
        "api": "completions",
        "prompt_template": "{system}\\n{messages}Bot:",
        "stop": ["\nYou:"],
    },
    "azure": {
        "model": "gpt-4o",
        "base_url": "https://res.openai.azure.com",
        "api_key": "azure-SECRET",
        "azure_api_version": "2024-10-21",
        "azure_deployment": "prod",
        "logit_bias": {"100": 2},
        "headers": {"X-Team": "bots"},
        "reasoning": False,
    },
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-main-SECRET")
    monkeypatch.setenv("OPENAI_EXTRA_HEADERS", '{"X-Title": "memorybot"}')


def settings(monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_profiles_and_provider_settings_are_read_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    found = settings(monkeypatch, MODEL_PROFILES=json.dumps(PROFILES), LOGIT_BIAS='{"50256": -100}')
    assert set(found.model_profiles) == {"fast", "local", "azure"}
    assert found.openai_extra_headers == {"X-Title": "memorybot"}
    assert found.logit_bias == {"50256": -100.0}
    assert found.model_profiles["local"].prompt_template == "{system}\n{messages}Bot:"


def test_a_profile_on_the_same_server_inherits_key_and_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = endpoints(settings(monkeypatch, MODEL_PROFILES=json.dumps(PROFILES)))
    fast, default = found["fast"], found["default"]
    assert (fast.base_url, fast.api_key, fast.headers) == (
        default.base_url,
        "sk-main-SECRET",
        (("X-Title", "memorybot"),),
    )
    assert (fast.model, fast.api, fast.context_tokens) == ("gpt-4o", "chat", 16_000)


def test_a_profile_on_another_server_never_gets_the_plain_key_or_headers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    found = endpoints(settings(monkeypatch, MODEL_PROFILES=json.dumps(PROFILES)))
    local, azure = found["local"], found["azure"]
    assert (local.api_key, local.headers) == ("", ())
    assert local.template.stop == ("\nYou:",)
    assert local.template.message == "{role}: {content}\n\n"  # inherited
    assert (azure.api_key, azure.headers, azure.is_azure) == (
        "azure-SECRET",
        (("X-Team", "bots"),),
        True,
    )
    assert (
        azure.url("gpt-4o")
        == "https://res.openai.azure.com/openai/deployments/prod/chat/completions"
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"MODEL_PROFILES": '{"Bad Name": {"model": "x"}}'}, "MODEL_PROFILES"),
        ({"MODEL_PROFILES": '{"default": {"model": "x"}}'}, "MODEL_PROFILES"),
        ({"MODEL_PROFILES": '{"a": {"model": "x", "api": "soap"}}'}, "MODEL_PROFILES"),
        ({"MODEL_PROFILES": '{"a": {"model": "x", "typo": 1}}'}, "MODEL_PROFILES"),
        ({"MODEL_PROFILES": '{"a": {"model": "x", "base_url": "ftp://h"}}'}, "MODEL_PROFILES"),
        ({"MODEL_PROFILES": '{"a": {"model": "x", "context_tokens": 1000}}'}, "context_tokens"),
        ({"MODEL_PROFILES": "not json"}, "MODEL_PROFILES"),
        ({"MODEL_PROFILES": '{"a": {"model": "x", "logit_bias": {"x": 1}}}'}, "MODEL_PROFILES"),
        ({"OPENAI_API": "grpc"}, "OPENAI_API"),
        ({"OPENAI_EXTRA_HEADERS": "[1, 2]"}, "OPENAI_EXTRA_HEADERS"),
        ({"LOGIT_BIAS": '{"abc": 1}'}, "LOGIT_BIAS"),
        ({"LOGIT_BIAS": '{"1": 101}'}, "LOGIT_BIAS"),
        ({"COMPLETIONS_TEMPLATE": "{system} only"}, "COMPLETIONS_TEMPLATE"),
        ({"COMPLETIONS_TEMPLATE": "{messages} {user}"}, "COMPLETIONS_TEMPLATE"),
        ({"COMPLETIONS_TEMPLATE": "{messages"}, "COMPLETIONS_TEMPLATE"),
        ({"COMPLETIONS_MESSAGE_TEMPLATE": "{role}:"}, "COMPLETIONS_MESSAGE_TEMPLATE"),
        ({"COMPLETIONS_STOP": '["a", "b", "c", "d", "e"]'}, "COMPLETIONS_STOP"),
        ({"REASONING_MODEL": "maybe"}, "REASONING_MODEL"),
    ],
)
def test_bad_backend_settings_are_named(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    with pytest.raises(ConfigError) as info:
        settings(monkeypatch, **env, MAX_REPLY_TOKENS="1024")
    assert named in str(info.value)


def test_a_secret_in_a_bad_profile_is_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = {"a": {"model": "x", "api_key": "sk-leak-ME", "api": "soap"}}
    with pytest.raises(ConfigError) as info:
        settings(monkeypatch, MODEL_PROFILES=json.dumps(bad))
    assert "sk-leak-ME" not in str(info.value)


@pytest.mark.parametrize(
    ("raw", "value"), [("", None), ("auto", None), ("true", True), ("0", False)]
)
def test_reasoning_model_is_auto_unless_set(
    monkeypatch: pytest.MonkeyPatch, raw: str, value: bool | None
) -> None:
    assert settings(monkeypatch, REASONING_MODEL=raw).reasoning_model is value


def chat(**fields: Any) -> Chat:
    return Chat(id=1, type="private", **fields)


def test_a_chat_on_a_profile_gets_its_model_and_context(monkeypatch: pytest.MonkeyPatch) -> None:
    found = settings(monkeypatch, MODEL_PROFILES=json.dumps(PROFILES), LOGIT_BIAS='{"1": 5}')
    local = resolve(found, {"model": "global-model"}, chat(profile="local"), None)
    assert (local.profile, local.model, local.context_tokens) == ("local", "llama3.1:8b", 8192)
    assert local.sampling.logit_bias == ()  # token ids of another tokenizer
    own = resolve(found, {}, chat(profile="fast", model="gpt-4.1"), None)
    assert (own.profile, own.model, own.sampling.logit_bias) == ("fast", "gpt-4.1", ())
    azure = resolve(found, {}, chat(profile="azure"), None)
    assert azure.sampling.logit_bias == (("100", 2.0),)
    plain = resolve(found, {"model": "global-model"}, chat(), None)
    assert (plain.profile, plain.model, plain.context_tokens) == ("default", "global-model", 16_000)
    assert plain.sampling.logit_bias == (("1", 5.0),)


def test_a_chat_on_a_removed_profile_falls_back_to_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = resolve(settings(monkeypatch), {}, chat(profile="gone"), None)
    assert (config.profile, config.model) == ("default", "gpt-4o-mini")


@pytest.fixture
async def recorded() -> AsyncIterator[tuple[httpx.AsyncClient, list[httpx.Request]]]:
    seen: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        choice = {"index": 0, "text": "x", "delta": {"content": "x"}, "finish_reason": "stop"}
        body = f"data: {json.dumps({'choices': [choice]})}\n\n".encode()
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        yield http, seen


@pytest.mark.parametrize(
    ("profile", "url"),
    [
        ("default", "https://api.openai.com/v1/chat/completions"),
        ("local", "http://127.0.0.1:11434/v1/completions"),
        ("nosuch", "https://api.openai.com/v1/chat/completions"),
    ],
)
async def test_the_dispatcher_sends_each_request_to_its_profile(
    monkeypatch: pytest.MonkeyPatch,
    recorded: tuple[httpx.AsyncClient, list[httpx.Request]],
    profile: str,
    url: str,
) -> None:
    http, seen = recorded
    backends = Backends.from_settings(
        http, settings(monkeypatch, MODEL_PROFILES=json.dumps(PROFILES))
    )
    request = ChatRequest("m", (ChatMessage("user", "hi"),), 32, profile=profile)
    assert [e.text async for e in backends.stream(request)] == ["x"]
    assert str(seen[0].url) == url


def test_the_dispatcher_needs_a_default_profile() -> None:
    with pytest.raises(ValueError):
        Backends({})
