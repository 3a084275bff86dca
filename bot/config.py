"""Every setting of the bot, read from the environment and `.env`, validated at start-up."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.errors import ConfigError
from bot.model_profile import (
    DEFAULT_MESSAGE_TEMPLATE,
    DEFAULT_PROFILE,
    DEFAULT_STOP,
    DEFAULT_TEMPLATE,
    PROFILE_NAME,
    ApiMode,
    ModelProfile,
    check_logit_bias,
    check_message_template,
    check_stop,
    check_template,
)
from bot.tool_config import (
    BUILTIN_NAMES,
    McpServerConfig,
    check_builtins,
    check_networks,
    check_unique,
    check_zone,
    parse_servers,
)

IdSet = Annotated[frozenset[int], NoDecode]
# JSON settings are decoded by `_json` (so a bad one is named like any other bad setting).
Headers = Annotated[dict[str, str], NoDecode]
Bias = Annotated[dict[str, float], NoDecode]
Stops = Annotated[list[str], NoDecode]
Profiles = Annotated[dict[str, ModelProfile], NoDecode]
Servers = Annotated[tuple[McpServerConfig, ...], NoDecode]
Names = Annotated[frozenset[str], NoDecode]
Networks = Annotated[tuple[str, ...], NoDecode]
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")  # what setWebhook accepts as secret_token


class Settings(BaseSettings):
    """The bot's configuration; field names are the environment variables, upper-cased."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    telegram_bot_token: SecretStr = Field(description="Bot token from @BotFather.")
    telegram_base_url: str = Field(
        "https://api.telegram.org",
        description="Bot API server root; set it when running a local Bot API server.",
    )
    openai_api_key: SecretStr = Field(
        SecretStr(""), description="API key; may stay empty for local servers."
    )
    openai_base_url: str = Field("https://api.openai.com/v1", description="OpenAI-compatible root.")
    model: str = Field("gpt-4o-mini", min_length=1)
    openai_api: ApiMode = Field(
        "chat", description="API mode: chat (/chat/completions), completions or responses."
    )
    openai_extra_headers: Headers = Field(
        default_factory=dict, description="Extra HTTP headers for the model server, as JSON."
    )
    azure_api_version: str = Field(
        "", description="Azure OpenAI api-version; setting it switches to Azure's URLs and auth."
    )
    azure_deployment: str = Field("", description="Azure deployment name; default: MODEL.")
    reasoning_model: bool | None = Field(
        None, description="Reasoning model (max_completion_tokens); unset: guess from MODEL."
    )
    logit_bias: Bias = Field(
        default_factory=dict,
        description='Default profile: token id → bias (-100..100), as JSON {"50256": -100}.',
    )
    completions_template: str = Field(
        DEFAULT_TEMPLATE, description="Completions mode: the prompt, with {system}, {messages}."
    )
    completions_message_template: str = Field(
        DEFAULT_MESSAGE_TEMPLATE, description="Completions mode: one message, {role}, {content}."
    )
    completions_stop: Stops = Field(
        list(DEFAULT_STOP), description="Completions mode: stop sequences, as a JSON list."
    )
    model_profiles: Profiles = Field(
        default_factory=dict, description="Named backends admins can switch a chat to, as JSON."
    )
    data_dir: Path = Field(Path("data"), description="Where the default SQLite file lives.")
    database_url: str = Field("", description="SQLAlchemy async URL; default SQLite in DATA_DIR.")
    system_prompt: str = "You are a helpful assistant in a Telegram chat. Answer concisely."
    context_tokens: int = Field(16_000, ge=256, description="The model's context window.")
    max_reply_tokens: int = Field(1_024, ge=16, description="Tokens reserved for the reply.")
    max_reply_chars: int | None = Field(
        None, ge=64, description="Longest reply shown, in characters; default 8 × max tokens."
    )
    max_reply_messages: int | None = Field(
        None, ge=1, le=1_000, description="Telegram messages per reply; default chars/2048 + 2."
    )
    max_reply_seconds: float | None = Field(
        None, ge=5, description="Seconds a reply may stream; default 60 + max tokens / 5."
    )
    summary_enabled: bool = Field(
        True, description="Fold turns that leave the token budget into a rolling summary."
    )
    summary_max_tokens: int = Field(
        512, ge=32, description="Longest summary, in tokens (at most a quarter of the budget)."
    )
    show_reasoning: bool = Field(
        False, description="Show the model's thinking, collapsed, above the answer."
    )
    admin_user_ids: IdSet = frozenset()
    allowed_user_ids: IdSet = Field(frozenset(), description="Empty means everyone may chat.")
    rate_limit_per_minute: int = Field(
        0, ge=0, description="Messages per user per minute; 0 = off."
    )
    daily_token_quota: int = Field(0, ge=0, description="Tokens per user per UTC day; 0 = off.")
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    presence_penalty: float | None = Field(None, ge=-2, le=2)
    frequency_penalty: float | None = Field(None, ge=-2, le=2)
    seed: int | None = None
    openai_timeout: float = Field(60.0, gt=0, description="Seconds to wait for the next byte.")
    openai_connect_timeout: float = Field(10.0, gt=0)
    openai_max_retries: int = Field(2, ge=0, le=10, description="Retries before the first token.")
    stream_mode: str = Field(
        "edit", pattern="^(edit|draft)$", description="Private chats: edit in place or drafts."
    )
    max_queued_per_chat: int = Field(5, ge=0, description="Waiting messages before 'busy'.")
    edit_interval: float = Field(1.0, ge=0.2, description="Seconds between edits, private chats.")
    group_edit_interval: float = Field(3.0, ge=1.0, description="Seconds between edits, groups.")
    user_hash_salt: SecretStr = Field(
        SecretStr(""), description="Salt of the `user` field sent to the model; default: token."
    )
    log_level: str = Field("INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    mode: str = Field(
        "polling", pattern="^(polling|webhook)$", description="How updates arrive: polling/webhook."
    )
    webhook_url: str = Field("", description="Public URL Telegram posts updates to (webhook mode).")
    webhook_listen: str = Field("0.0.0.0", description="Address the webhook server binds to.")
    webhook_port: int = Field(8080, ge=1, le=65535, description="Port of the webhook server.")
    webhook_secret: SecretStr = Field(
        SecretStr(""), description="secret_token checked on every webhook request; required."
    )
    drop_pending_updates: bool = Field(False, description="Drop updates queued while down.")
    health_port: int = Field(
        0, ge=0, le=65535, description="Polling mode: port of /healthz, /readyz, /metrics; 0 = off."
    )
    database_pool_size: int = Field(
        10,
        ge=1,
        le=500,
        description="PostgreSQL connections kept open; up to as many more in bursts.",
    )
    advisory_locks: bool = Field(
        False,
        description="PostgreSQL: a per-chat advisory lock per turn, for several replicas.",
    )
    shutdown_grace_seconds: float = Field(
        30.0, ge=0, description="On SIGTERM, seconds running replies get to finish."
    )
    poller_lease_seconds: float = Field(
        15.0,
        ge=1,
        le=600,
        description="Polling mode: the database lease that keeps a second poller out lasts "
        "this long without a heartbeat (renewed every third of it).",
    )

    # Attachments (bot/media): photos, voice, audio, video notes, videos, documents.
    media_max_bytes: int = Field(
        20 * 1024 * 1024,
        ge=1,
        le=20 * 1024 * 1024,
        description="Largest attachment downloaded, in bytes (Telegram lets bots take 20 MB).",
    )
    media_concurrency: int = Field(
        2, ge=1, le=64, description="Image decodes and document extractions at once."
    )
    media_parse_timeout: float = Field(
        60.0, gt=0, description="Seconds a PDF or DOCX may take to parse; then it is stopped."
    )
    image_detail: Literal["auto", "low", "high"] = Field(
        "auto", description="The `detail` of images sent to the model."
    )
    vision: bool | None = Field(
        None, description="The default profile's model sees images; unset: guess from MODEL."
    )
    transcription_base_url: str = Field(
        "",
        description="Root of POST /audio/transcriptions; default: OPENAI_BASE_URL; `off`: "
        "recordings are not transcribed.",
    )
    transcription_api_key: SecretStr = Field(
        SecretStr(""),
        description="Key of the transcription server; default: OPENAI_API_KEY when both URLs "
        "are the same (a key never goes to another server).",
    )
    transcription_model: str = Field("whisper-1", min_length=1)
    transcription_language: str = Field(
        "", pattern="^([a-z]{2})?$", description="ISO-639-1 language of speech; empty: detect."
    )
    show_transcript: bool = Field(True, description="Quote a voice message's transcript.")
    document_max_tokens: int = Field(
        8000, ge=100, description="Tokens of a document's text kept; a longer one is cut."
    )
    pdf_max_pages: int = Field(500, ge=1, description="PDF pages read at most.")
    tools_enabled: bool = Field(True, description="Offer tools to backends that support them.")
    mcp_servers: Servers = Field(
        (), description="MCP servers (stdio command or streamable HTTP URL), as JSON."
    )
    tools_max_steps: int = Field(8, ge=1, le=64, description="Model → tools rounds per turn.")
    tools_timeout: float = Field(30.0, gt=0, description="Seconds one tool call may take.")
    tools_turn_timeout: float = Field(180.0, gt=0, description="Seconds for a turn's tool loop.")
    tools_result_max_bytes: int = Field(
        32_000, ge=256, description="Longest tool result given to the model (UTF-8 bytes)."
    )
    tools_confirm_seconds: float = Field(
        120.0, gt=0, description="Seconds a confirmation button waits for the user's tap."
    )
    mcp_connect_timeout: float = Field(20.0, gt=0, description="Seconds to connect to a server.")
    builtin_tools: Names = Field(
        frozenset(BUILTIN_NAMES), description="Built-ins on offer, comma-separated; empty: none."
    )
    fetch_allow_private: bool = Field(
        False, description="Let fetch_url reach loopback/private/link-local addresses."
    )
    fetch_allowed_networks: Networks = Field(
        (), description="Networks fetch_url may reach although private, comma-separated CIDRs."
    )
    fetch_max_bytes: int = Field(2_000_000, ge=1_024, description="Bytes fetch_url downloads.")
    fetch_timeout: float = Field(15.0, gt=0, description="Seconds fetch_url may take.")
    default_timezone: str = Field("UTC", description="IANA zone for current_time.")
    image_model: str = Field("gpt-image-1", min_length=1, description="generate_image's model.")
    image_size: str = Field(
        "1024x1024", pattern=r"^(auto|\d{3,4}x\d{3,4})$", description="generate_image's size."
    )

    @field_validator("admin_user_ids", "allowed_user_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: Any) -> Any:
        if isinstance(value, str):
            parts = [p for p in value.replace(";", ",").replace(" ", ",").split(",") if p]
            if not all(p.lstrip("-").isdigit() for p in parts):
                raise ValueError("must be numeric Telegram user ids separated by commas")
            return frozenset(int(p) for p in parts)
        return value

    @field_validator(
        "openai_extra_headers", "logit_bias", "completions_stop", "model_profiles", mode="before"
    )
    @classmethod
    def _json(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise ValueError("expected JSON") from None

    @field_validator("mcp_servers", mode="before")
    @classmethod
    def _servers(cls, value: Any) -> Any:
        return parse_servers(value)

    @field_validator("mcp_servers")
    @classmethod
    def _unique_servers(cls, value: tuple[McpServerConfig, ...]) -> tuple[McpServerConfig, ...]:
        return check_unique(value)

    @field_validator("builtin_tools", mode="before")
    @classmethod
    def _builtins(cls, value: Any) -> Any:
        return check_builtins(value)

    @field_validator("fetch_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        return check_networks(value)

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_zone(value)

    @field_validator("reasoning_model", "vision", mode="before")
    @classmethod
    def _auto_is_none(cls, value: Any) -> Any:
        return None if isinstance(value, str) and value.strip().lower() in ("", "auto") else value

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, value: dict[str, float]) -> dict[str, float]:
        return check_logit_bias(value)

    @field_validator("completions_template")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)

    @field_validator("completions_message_template")
    @classmethod
    def _message_template(cls, value: str) -> str:
        return check_message_template(value)

    @field_validator("completions_stop")
    @classmethod
    def _stop(cls, value: list[str]) -> list[str]:
        return check_stop(value)

    @field_validator("model_profiles")
    @classmethod
    def _profile_names(cls, value: dict[str, ModelProfile]) -> dict[str, ModelProfile]:
        for name in value:
            if not PROFILE_NAME.match(name) or name == DEFAULT_PROFILE:
                raise ValueError(
                    f"bad profile name {name!r}: 1-32 of a-z, 0-9, _ and -, not {DEFAULT_PROFILE!r}"
                )
        return value

    @field_validator("telegram_bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        head, _, tail = value.get_secret_value().partition(":")
        if not head.isdigit() or not tail:
            raise ValueError("must look like 123456:ABC-DEF (the token from @BotFather)")
        return value

    @field_validator("telegram_base_url", "openai_base_url", "transcription_base_url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "transcription_base_url" and value.lower() in ("", "off"):
            return value.lower()  # OPENAI_BASE_URL, or none (see `transcription`)
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _budget_fits(self) -> Settings:
        if self.max_reply_tokens >= self.context_tokens:
            raise ValueError("MAX_REPLY_TOKENS must be smaller than CONTEXT_TOKENS")
        for name, profile in self.model_profiles.items():
            if (profile.context_tokens or self.context_tokens) <= self.max_reply_tokens:
                raise ValueError(f"MODEL_PROFILES {name}: context_tokens <= MAX_REPLY_TOKENS")
        return self

    @model_validator(mode="after")
    def _webhook_complete(self) -> Settings:
        if self.mode != "webhook":
            return self
        if not self.webhook_url.startswith(("http://", "https://")):
            raise ValueError("MODE=webhook needs WEBHOOK_URL, the public https:// URL of the bot")
        if not SECRET_TOKEN.fullmatch(self.webhook_secret.get_secret_value()):
            raise ValueError(
                "MODE=webhook needs WEBHOOK_SECRET: 1-256 characters A-Z, a-z, 0-9, _ and -"
            )
        return self

    @property
    def webhook_path(self) -> str:
        """Where the webhook server takes updates: the path of WEBHOOK_URL."""
        return urlsplit(self.webhook_url).path or "/"

    @property
    def transcription(self) -> tuple[str, str]:
        """(base URL, API key) of the transcription server: OPENAI_API_KEY goes only to
        OPENAI_BASE_URL."""
        if self.transcription_base_url == "off":
            return "", ""
        base = self.transcription_base_url or self.openai_base_url
        key = self.transcription_api_key.get_secret_value()
        if not key and base == self.openai_base_url:
            key = self.openai_api_key.get_secret_value()
        return base, key

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite+aiosqlite:///{self.data_dir / 'bot.db'}"

    @property
    def prompt_budget(self) -> int:
        """Tokens the prompt may use: the context minus the reply reserve."""
        return self.context_tokens - self.max_reply_tokens


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming each bad setting, without echoing secret values."""
    problems = []
    for error in exc.errors():
        name = "_".join(str(part) for part in error["loc"]).upper()
        message = error["msg"].removeprefix("Value error, ")
        if not name:
            problems.append(message)
        elif error["type"] == "missing":
            problems.append(f"{name} is not set")
        else:
            problems.append(f"{name}: {message}")
    return "; ".join(problems)


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from the environment and `.env`; raise ConfigError naming what is wrong."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problem = describe_validation_error(exc)
    # Raised outside the handler: the pydantic error (which holds input values) is not chained.
    raise ConfigError(problem)
