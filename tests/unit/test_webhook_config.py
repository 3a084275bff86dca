"""Webhook settings: what MODE=webhook requires, and where the webhook path comes from."""

from __future__ import annotations

import pytest

from bot.__main__ import EXIT_CONFIG, main
from bot.config import load_settings
from bot.errors import ConfigError

BASE = {"_env_file": None, "telegram_bot_token": "1:abc"}


def test_webhook_mode_needs_a_url_and_a_valid_secret() -> None:
    with pytest.raises(ConfigError, match="WEBHOOK_URL"):
        load_settings(**BASE, mode="webhook", webhook_secret="s")
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        load_settings(**BASE, mode="webhook", webhook_url="https://h/t")
    with pytest.raises(ConfigError, match="WEBHOOK_SECRET"):
        load_settings(**BASE, mode="webhook", webhook_url="https://h/t", webhook_secret="a b")


def test_webhook_path_is_the_path_of_the_public_url() -> None:
    settings = load_settings(
        **BASE, mode="webhook", webhook_url="https://bot.example.com/tg/hook", webhook_secret="x"
    )
    assert settings.webhook_path == "/tg/hook"
    bare = load_settings(**BASE, mode="webhook", webhook_url="https://h", webhook_secret="x")
    assert bare.webhook_path == "/"


def test_run_webhook_flag_without_webhook_settings_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(str(tmp_path))
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "1:abc")
    for name in ("WEBHOOK_URL", "WEBHOOK_SECRET", "MODE"):
        monkeypatch.delenv(name, raising=False)
    assert main(["run", "--webhook"]) == EXIT_CONFIG
    assert "WEBHOOK_URL" in capsys.readouterr().err
