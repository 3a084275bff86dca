"""The configuration in force for a chat: chat setting → global override → configured default.

The system prompt has one more layer: the chat's custom prompt, then the chat's preset, then the
global prompt (an admin's run-time override, else SYSTEM_PROMPT). Parameters an admin may set
are parsed and range-checked here, once, for chats and for the global level alike.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.config import Settings
from bot.db.models import Chat
from bot.llm.image_tokens import sees_images
from bot.llm.types import Sampling
from bot.model_profile import DEFAULT_PROFILE

# Python's int() and float() also read other scripts' digits ("٣"), "inf", "nan" and "1_0":
# an admin's number is ASCII digits with an optional sign, point and exponent.
INTEGER = re.compile(r"[+-]?[0-9]+")
DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
# OpenAI documents at most 4 stop sequences and no length; servers that check (vLLM, TGI)
# count tokens. 256 characters is far above any real stop marker ("User:", "###", "</s>")
# and keeps every request and /settings answer small.
MAX_STOP_SEQUENCES = 4
MAX_STOP_LENGTH = 256


def _number(kind: type[float] | type[int], low: float, high: float) -> Callable[[str], Any]:
    def parse(raw: str) -> Any:
        if not (INTEGER if kind is int else DECIMAL).fullmatch(raw):
            raise ValueError(f"expected {'a number' if kind is float else 'an integer'}")
        value = kind(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {low:g} and {high:g}")
        return value if kind is int else value + 0.0  # -0.0 + 0.0 is 0.0: no "-0" stored

    return parse


def _stop(raw: str) -> list[str]:
    """Stop sequences: a JSON list, or `|`-separated; at most 4, like the API, each at most
    `MAX_STOP_LENGTH` characters."""
    try:
        value = json.loads(raw)
    except ValueError:
        value = [part for part in raw.split("|") if part]
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise ValueError('expected stop sequences like ["###", "User:"] or ###|User:')
    if len(value) > MAX_STOP_SEQUENCES:
        raise ValueError(f"at most {MAX_STOP_SEQUENCES} stop sequences")
    if any(len(v) > MAX_STOP_LENGTH for v in value):
        raise ValueError(f"a stop sequence is at most {MAX_STOP_LENGTH} characters")
    return value


def _model(raw: str) -> str:
    if not raw or len(raw) > 128 or any(ch.isspace() for ch in raw):
        raise ValueError("expected a model name without spaces")
    return raw


# name an admin uses → (parser, Chat column)
PARAMETERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "model": (_model, "model"),
    "temperature": (_number(float, 0, 2), "temperature"),
    "top_p": (_number(float, 0, 1), "top_p"),
    "max_tokens": (_number(int, 16, 1_000_000), "max_reply_tokens"),
    "presence_penalty": (_number(float, -2, 2), "presence_penalty"),
    "frequency_penalty": (_number(float, -2, 2), "frequency_penalty"),
    "seed": (_number(int, -(2**63), 2**63 - 1), "seed"),
    "stop": (_stop, "stop"),
}
CLEAR = frozenset({"default", "reset", "none"})


def parse_parameter(name: str, raw: str) -> Any:
    """The typed value for `name`, None for "default"; ValueError explains what is wrong."""
    if name not in PARAMETERS:
        raise ValueError(f"unknown parameter {name!r}; one of: {', '.join(PARAMETERS)}")
    if raw.strip().lower() in CLEAR:
        return None
    return PARAMETERS[name][0](raw.strip())


@dataclass(frozen=True, slots=True)
class ChatConfig:
    model: str
    system_prompt: str
    prompt_source: str  # "chat", "preset <name>", "global" or "config"
    max_reply_tokens: int
    sampling: Sampling
    context_tokens: int  # the context window of the profile's model
    profile: str = DEFAULT_PROFILE  # the MODEL_PROFILES entry whose backend answers
    summary_enabled: bool = True  # fold old turns into a rolling summary
    # The model takes image parts: VISION or the profile's `vision`, else by its name; never
    # in completions mode (a prompt of text).
    vision: bool = False


def _configured(settings: Settings, name: str) -> Any:
    if name == "max_tokens":
        return settings.max_reply_tokens
    if name == "stop":
        return None
    return getattr(settings, name)


def effective_parameter(
    name: str, settings: Settings, overrides: Mapping[str, Any], chat: Chat | None
) -> tuple[Any, str]:
    """(value, where it comes from) for one parameter."""
    column = PARAMETERS[name][1]
    chat_value = getattr(chat, column) if chat is not None else None
    if chat_value is not None:
        return (json.loads(chat_value) if name == "stop" else chat_value), "chat"
    if overrides.get(name) is not None:
        return overrides[name], "global"
    return _configured(settings, name), "config"


def resolve(
    settings: Settings, overrides: Mapping[str, Any], chat: Chat, preset_text: str | None
) -> ChatConfig:
    """Everything a turn needs to know about the chat's configuration."""

    def value(name: str) -> Any:
        return effective_parameter(name, settings, overrides, chat)[0]

    if chat.system_prompt is not None:
        prompt, source = chat.system_prompt, "chat"
    elif preset_text is not None:
        prompt, source = preset_text, f"preset {chat.preset}"
    elif overrides.get("system_prompt") is not None:
        prompt, source = overrides["system_prompt"], "global"
    else:
        prompt, source = settings.system_prompt, "config"
    stop = value("stop")
    profile = settings.model_profiles.get(chat.profile or "")
    model, context, bias = value("model"), settings.context_tokens, settings.logit_bias
    vision, api = settings.vision, settings.openai_api
    if profile is not None:  # the profile's model, unless this chat names its own
        model = chat.model or profile.model
        context = profile.context_tokens or context
        bias = profile.logit_bias  # token ids belong to one tokenizer: never inherited
        vision, api = profile.vision, profile.api
    return ChatConfig(
        model=model,
        system_prompt=prompt,
        prompt_source=source,
        max_reply_tokens=value("max_tokens"),
        sampling=Sampling(
            temperature=value("temperature"),
            top_p=value("top_p"),
            presence_penalty=value("presence_penalty"),
            frequency_penalty=value("frequency_penalty"),
            seed=value("seed"),
            stop=tuple(stop or ()),
            logit_bias=tuple(bias.items()),
        ),
        profile=chat.profile if profile is not None and chat.profile else DEFAULT_PROFILE,
        context_tokens=context,
        summary_enabled=(
            settings.summary_enabled if chat.summary_enabled is None else chat.summary_enabled
        ),
        vision=api != "completions" and sees_images(model, vision),
    )
