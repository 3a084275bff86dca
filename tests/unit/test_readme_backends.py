"""README's "backend → settings" table and MODEL_PROFILES example are valid settings, and each
provider's request goes where that provider expects it (checked with `httpx.MockTransport`)."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from bot.config import Settings
from bot.llm.backends import Backends
from bot.llm.types import ChatMessage, ChatRequest

README = Path(__file__).parents[2] / "README.md"
SETTING = re.compile(r"`([A-Z_]+)=([^`]*)`")
EXPECTED_URLS = {
    "OpenAI": "https://api.openai.com/v1/chat/completions",
    "Azure OpenAI": "https://resource.openai.azure.com/openai/deployments/"
    "<deployment name>/chat/completions?api-version=2024-10-21",
    "OpenRouter": "https://openrouter.ai/api/v1/chat/completions",
    "DeepSeek": "https://api.deepseek.com/v1/chat/completions",
    "Groq": "https://api.groq.com/openai/v1/chat/completions",
    "Together": "https://api.together.xyz/v1/chat/completions",
    "Ollama": "http://127.0.0.1:11434/v1/chat/completions",
    "vLLM": "http://127.0.0.1:8000/v1/chat/completions",
    "llama.cpp (`llama-server`)": "http://127.0.0.1:8080/v1/chat/completions",
    "LM Studio": "http://127.0.0.1:1234/v1/chat/completions",
}


def backend_rows() -> dict[str, dict[str, str]]:
    """The table rows: backend → its example's settings (variants in parentheses left out)."""
    text = README.read_text()
    table = text.split("| backend | settings |\n|---|---|\n", 1)[1].split("\n\n", 1)[0]
    rows: dict[str, dict[str, str]] = {}
    for line in table.splitlines():
        _, name, cell, _ = line.split("|", 3)
        rows[name.strip()] = dict(SETTING.findall(cell.split("(", 1)[0]))
    return rows


def test_the_table_has_every_provider_of_the_issue() -> None:
    assert list(backend_rows()) == list(EXPECTED_URLS)


@pytest.mark.parametrize("backend", EXPECTED_URLS)
async def test_each_readme_example_is_valid_and_reaches_its_provider(backend: str) -> None:
    values = {k.lower(): v for k, v in backend_rows()[backend].items()}
    settings = Settings(_env_file=None, telegram_bot_token="1:a", **values)  # type: ignore[call-arg]
    sent: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        body = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as http:
        request = ChatRequest(settings.model, (ChatMessage("user", "hi"),), 16)
        _ = [e async for e in Backends.from_settings(http, settings).stream(request)]
    assert (
        str(sent[0].url).replace("%3C", "<").replace("%3E", ">").replace("%20", " ")
        == (EXPECTED_URLS[backend])
    )


def test_the_model_profiles_example_is_valid() -> None:
    line = next(x for x in README.read_text().splitlines() if x.startswith("MODEL_PROFILES="))
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, telegram_bot_token="1:a", model_profiles=line.split("=", 1)[1]
    )
    assert set(settings.model_profiles) == {"smart", "think", "local"}
