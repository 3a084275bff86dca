"""load_settings / Settings: environment and `.env` parsing, validation, derived values."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import Settings, load_settings
from bot.errors import ConfigError

TOKEN = "123456789:AAE-secretTokenValue_xyz987"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No setting comes from the real environment or a `.env` outside tmp_path."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def set_env(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def config_error(monkeypatch: pytest.MonkeyPatch, **values: str) -> str:
    set_env(monkeypatch, **values)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert info.value.__cause__ is None  # the pydantic error (with input values) is not chained
    return str(info.value)


def test_a_valid_token_alone_gives_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN)

    settings = load_settings()

    assert settings.telegram_bot_token.get_secret_value() == TOKEN
    assert settings.model == "gpt-4o-mini"
    assert settings.openai_base_url == "https://api.openai.com/v1"
    assert settings.openai_api_key.get_secret_value() == ""
    assert settings.admin_user_ids == frozenset()
    assert settings.allowed_user_ids == frozenset()
    assert settings.temperature is None


def test_a_missing_token_is_a_config_error_naming_telegram_bot_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = config_error(monkeypatch)

    assert message == "TELEGRAM_BOT_TOKEN is not set"


@pytest.mark.parametrize(
    "token", ["notatoken", "98765", "98765:", "abc:defGHI", ":defGHI", "12a45:xyz", " "]
)
def test_a_malformed_token_is_rejected_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    message = config_error(monkeypatch, TELEGRAM_BOT_TOKEN=token)

    assert message.startswith("TELEGRAM_BOT_TOKEN: must look like")
    if token.strip():
        assert token not in message


def test_non_numeric_context_tokens_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, CONTEXT_TOKENS="lots")

    assert message.startswith("CONTEXT_TOKENS: ")
    assert "integer" in message


def test_a_context_window_below_the_minimum_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(
        monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, CONTEXT_TOKENS="100", MAX_REPLY_TOKENS="16"
    )

    assert message.startswith("CONTEXT_TOKENS: ")


@pytest.mark.parametrize(
    ("raw", "ids"),
    [
        ("1, 2 3", {1, 2, 3}),
        ("42", {42}),
        ("7;8", {7, 8}),
        ("-1001234567890, 5", {-1001234567890, 5}),
        ("", set()),
        (" , ", set()),
    ],
)
def test_admin_user_ids_are_split_on_commas_spaces_and_semicolons(
    monkeypatch: pytest.MonkeyPatch, raw: str, ids: set[int]
) -> None:
    set_env(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, ADMIN_USER_IDS=raw, ALLOWED_USER_IDS=raw)

    settings = load_settings()

    assert settings.admin_user_ids == frozenset(ids)
    assert settings.allowed_user_ids == frozenset(ids)


@pytest.mark.parametrize("raw", ["1,x", "1.5", "[1, 2]", "@alice"])
def test_non_numeric_admin_user_ids_are_rejected_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    message = config_error(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, ADMIN_USER_IDS=raw)

    assert message.startswith("ADMIN_USER_IDS: ")
    assert "numeric" in message


def test_non_numeric_allowed_user_ids_are_rejected_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    message = config_error(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, ALLOWED_USER_IDS="5,bob")

    assert message.startswith("ALLOWED_USER_IDS: ")


@pytest.mark.parametrize(("context", "reply"), [("4096", "4096"), ("4096", "8000")])
def test_a_reply_reserve_not_smaller_than_the_context_is_rejected(
    monkeypatch: pytest.MonkeyPatch, context: str, reply: str
) -> None:
    message = config_error(
        monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, CONTEXT_TOKENS=context, MAX_REPLY_TOKENS=reply
    )

    assert "MAX_REPLY_TOKENS" in message
    assert "CONTEXT_TOKENS" in message


@pytest.mark.parametrize("name", ["OPENAI_BASE_URL", "TELEGRAM_BASE_URL"])
@pytest.mark.parametrize("url", ["api.openai.com/v1", "ftp://example.com", "localhost:8000"])
def test_a_url_without_an_http_scheme_is_rejected(
    monkeypatch: pytest.MonkeyPatch, name: str, url: str
) -> None:
    message = config_error(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, **{name: url})

    assert message.startswith(f"{name}: ")
    assert "http" in message


def test_a_trailing_slash_is_removed_from_base_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(
        monkeypatch,
        TELEGRAM_BOT_TOKEN=TOKEN,
        OPENAI_BASE_URL="http://localhost:8000/v1/",
        TELEGRAM_BASE_URL="http://127.0.0.1:8081/",
    )

    settings = load_settings()

    assert settings.openai_base_url == "http://localhost:8000/v1"
    assert settings.telegram_base_url == "http://127.0.0.1:8081"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TEMPERATURE", "2.5"),
        ("TOP_P", "-0.1"),
        ("OPENAI_MAX_RETRIES", "11"),
        ("EDIT_INTERVAL", "0.1"),
        ("LOG_LEVEL", "verbose"),
        ("MODEL", ""),
    ],
)
def test_out_of_range_values_are_rejected_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    message = config_error(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, **{name: value})

    assert message.startswith(f"{name}: ")


def test_every_bad_setting_is_named_in_one_message(monkeypatch: pytest.MonkeyPatch) -> None:
    message = config_error(
        monkeypatch, CONTEXT_TOKENS="lots", ADMIN_USER_IDS="1,x", OPENAI_BASE_URL="nope"
    )

    for name in ("TELEGRAM_BOT_TOKEN", "CONTEXT_TOKENS", "ADMIN_USER_IDS", "OPENAI_BASE_URL"):
        assert name in message


def test_a_dotenv_file_in_the_working_directory_is_read(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    (clean_environment / ".env").write_text(
        f"TELEGRAM_BOT_TOKEN={TOKEN}\nMODEL=llama3.1:8b\nADMIN_USER_IDS=1, 2\n", encoding="utf-8"
    )

    settings = load_settings()

    assert settings.telegram_bot_token.get_secret_value() == TOKEN
    assert settings.model == "llama3.1:8b"
    assert settings.admin_user_ids == frozenset({1, 2})


def test_environment_variables_override_the_dotenv_file(
    monkeypatch: pytest.MonkeyPatch, clean_environment: Path
) -> None:
    (clean_environment / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\nMODEL=from-file\n")
    set_env(monkeypatch, MODEL="from-env")

    assert load_settings().model == "from-env"


def test_settings_without_an_env_file_ignore_the_dotenv_file(clean_environment: Path) -> None:
    (clean_environment / ".env").write_text(f"TELEGRAM_BOT_TOKEN={TOKEN}\nMODEL=from-file\n")

    settings = Settings(_env_file=None, telegram_bot_token=TOKEN)

    assert settings.model == "gpt-4o-mini"


def test_keyword_overrides_win_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, MODEL="from-env")

    assert load_settings(model="from-override").model == "from-override"


def test_the_token_value_never_appears_in_an_error_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for token in (TOKEN, "SECRET-but-malformed-token"):
        set_env(
            monkeypatch,
            TELEGRAM_BOT_TOKEN=token,
            OPENAI_API_KEY="sk-also-secret-123",
            CONTEXT_TOKENS="1000",
            MAX_REPLY_TOKENS="2000",
            OPENAI_BASE_URL="nope",
        )
        with pytest.raises(ConfigError) as info:
            load_settings()

        for shown in (str(info.value), repr(info.value)):
            assert token not in shown
            assert "secret" not in shown.lower()


def test_the_token_is_hidden_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, OPENAI_API_KEY="sk-hidden-456")

    settings = load_settings()

    assert TOKEN not in repr(settings)
    assert "sk-hidden-456" not in repr(settings)


def test_the_default_database_is_sqlite_under_data_dir(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data_dir = tmp_path / "state"
    set_env(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, DATA_DIR=str(data_dir))

    settings = load_settings()

    assert settings.data_dir == data_dir
    assert settings.resolved_database_url == f"sqlite+aiosqlite:///{data_dir / 'bot.db'}"


def test_the_default_data_dir_is_relative_data(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN)

    assert load_settings().resolved_database_url == "sqlite+aiosqlite:///data/bot.db"


def test_an_explicit_database_url_is_used_as_given(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "postgresql+asyncpg://bot:pw@db:5432/bot"
    set_env(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, DATABASE_URL=url, DATA_DIR="/elsewhere")

    assert load_settings().resolved_database_url == url


@pytest.mark.parametrize(
    ("context", "reply", "budget"),
    [(None, None, 16_000 - 1_024), ("8000", "1000", 7_000), ("257", "256", 1)],
)
def test_prompt_budget_is_the_context_minus_the_reply_reserve(
    monkeypatch: pytest.MonkeyPatch, context: str | None, reply: str | None, budget: int
) -> None:
    set_env(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN)
    if context is not None and reply is not None:
        set_env(monkeypatch, CONTEXT_TOKENS=context, MAX_REPLY_TOKENS=reply)

    assert load_settings().prompt_budget == budget


def test_sampling_settings_are_parsed_as_numbers(monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, TEMPERATURE="0.2", TOP_P="1", SEED="42")

    settings = load_settings()

    assert (settings.temperature, settings.top_p, settings.seed) == (0.2, 1.0, 42)


def test_a_config_error_does_not_chain_the_validation_error_holding_the_input(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "not-a-token-SECRETVALUE")

    with pytest.raises(ConfigError) as info:
        load_settings()

    assert info.value.__context__ is None and info.value.__cause__ is None
    assert "SECRETVALUE" not in str(info.value)


def test_media_settings_and_the_transcription_key_stays_with_its_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from bot.media.build import profile_options
    from bot.media.options import MediaOptions

    set_env(monkeypatch, TELEGRAM_BOT_TOKEN=TOKEN, OPENAI_API_KEY="sk-main")
    settings = load_settings()
    assert (settings.media_max_bytes, settings.vision, settings.show_transcript) == (
        20 * 1024 * 1024,
        None,
        True,
    )
    assert settings.transcription == ("https://api.openai.com/v1", "sk-main")
    set_env(monkeypatch, TRANSCRIPTION_BASE_URL="https://api.groq.com/openai/v1", VISION="false")
    settings = load_settings()
    assert settings.transcription == ("https://api.groq.com/openai/v1", "")  # not sk-main
    assert settings.vision is False
    set_env(
        monkeypatch,
        MODEL_PROFILES='{"local": {"model": "llava", "base_url": "http://127.0.0.1:8000/v1",'
        ' "api_key": "sk-local", "transcription_base_url": "http://127.0.0.1:8000/v1"},'
        ' "mini": {"model": "gpt-4o", "transcription_model": "gpt-4o-mini-transcribe"},'
        ' "plain": {"model": "gpt-4o"}}',
    )
    settings = load_settings()
    options = MediaOptions.from_settings(settings)
    local = profile_options(options, settings.model_profiles["local"])
    mini = profile_options(options, settings.model_profiles["mini"])
    assert local is not None and local.transcription_api_key == "sk-local"
    assert mini is not None and mini.transcription_base_url == options.transcription_base_url
    assert mini.transcription_model == "gpt-4o-mini-transcribe"
    assert profile_options(options, settings.model_profiles["plain"]) is None
    assert "MEDIA_MAX_BYTES" in config_error(monkeypatch, MEDIA_MAX_BYTES=str(21 * 1024 * 1024))
