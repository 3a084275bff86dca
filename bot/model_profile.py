"""A named model profile (MODEL_PROFILES) and the prompt template of the completions mode.

A profile is one backend: where to send requests, how (API mode, Azure, headers) and which
model. Values left out are taken from the plain settings, except that a profile with its own
`base_url` never inherits the plain API key or headers (they would leak to another provider).
"""

from __future__ import annotations

import re
import string
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

ApiMode = Literal["chat", "completions", "responses"]

PROFILE_NAME = re.compile(r"^[a-z0-9_-]{1,32}$")
DEFAULT_PROFILE = "default"
DEFAULT_TEMPLATE = "{system}\n\n{messages}Assistant:"
DEFAULT_MESSAGE_TEMPLATE = "{role}: {content}\n\n"
DEFAULT_STOP = ("\nUser:",)
TEMPLATE_FIELDS = {"system", "messages"}
MESSAGE_FIELDS = {"role", "content"}
MAX_STOP = 4


def _fields(template: str) -> set[str]:
    try:
        return {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as exc:
        raise ValueError(f"not a valid template ({exc}); write {{{{ for {{") from None


def _check(template: str, allowed: set[str], required: str) -> str:
    template = template.replace("\\n", "\n")
    found = _fields(template)
    if unknown := found - allowed:
        names = ", ".join("{" + name + "}" for name in sorted(allowed))
        raise ValueError(f"unknown placeholder(s) {sorted(unknown)}; use {names}")
    if required not in found:
        raise ValueError(f"must contain {{{required}}}")
    return template


def check_template(template: str) -> str:
    """A prompt template uses {system} and must use {messages}; `\\n` means a newline."""
    return _check(template, TEMPLATE_FIELDS, "messages")


def check_message_template(template: str) -> str:
    """A message template must use {content} and may use {role}; `\\n` means a newline."""
    return _check(template, MESSAGE_FIELDS, "content")


def check_stop(stop: list[str]) -> list[str]:
    if len(stop) > MAX_STOP or not all(stop):
        raise ValueError(f"at most {MAX_STOP} non-empty stop sequences")
    return stop


def check_logit_bias(value: dict[str, float]) -> dict[str, float]:
    """Token ids (of the model's own tokenizer) → bias between -100 and 100."""
    for token, bias in value.items():
        if not token.isdigit() or not -100 <= bias <= 100:
            raise ValueError("keys must be token ids and values between -100 and 100")
    return value


def check_base_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError("must start with http:// or https://")
    return value.rstrip("/")


class ModelProfile(BaseModel):
    """One entry of MODEL_PROFILES."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1, max_length=128)
    base_url: str | None = None
    api_key: SecretStr | None = None
    api: ApiMode = "chat"
    headers: dict[str, str] | None = None
    azure_api_version: str = ""
    azure_deployment: str = ""
    context_tokens: int | None = Field(None, ge=256)
    reasoning: bool | None = None
    tools: bool | None = None  # offers function calling; None: by `api` (completions: no)
    prompt_template: str | None = None
    message_template: str | None = None
    stop: list[str] | None = None
    logit_bias: dict[str, float] = Field(default_factory=dict)  # LOGIT_BIAS is not inherited
    vision: bool | None = None  # the model sees images; None: guessed from its name
    # Speech to text for this profile; unset: TRANSCRIPTION_* (the model: TRANSCRIPTION_MODEL).
    transcription_base_url: str | None = None
    transcription_api_key: SecretStr | None = None
    transcription_model: str | None = None

    @field_validator("base_url", "transcription_base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)

    @field_validator("prompt_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return None if value is None else check_template(value)

    @field_validator("message_template")
    @classmethod
    def _message_template(cls, value: str | None) -> str | None:
        return None if value is None else check_message_template(value)

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else check_stop(value)

    @field_validator("logit_bias")
    @classmethod
    def _bias(cls, value: dict[str, float]) -> dict[str, float]:
        return check_logit_bias(value)
