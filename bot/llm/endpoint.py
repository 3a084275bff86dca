"""Where and how to reach one backend: URL, auth, headers, API mode and model quirks.

`endpoints(settings)` turns the plain settings (the default profile) and MODEL_PROFILES into
`Endpoint`s. Azure OpenAI is recognised by its api-version: requests then go to
`/openai/deployments/{deployment}/...?api-version=...` with an `api-key` header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from bot.config import Settings
from bot.llm.types import ChatMessage
from bot.model_profile import DEFAULT_PROFILE, ApiMode, ModelProfile

# o1, o3-mini, o4-mini-high, gpt-5, gpt-5-mini (but not gpt-5-chat-latest, a chat model).
REASONING_NAME = re.compile(r"^(o\d(-.*)?|gpt-5(?!-chat)(-.*|\.\d.*)?)$")
PATHS: dict[str, str] = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "responses": "/responses",
}
ROLE_NAMES = {"system": "System", "user": "User", "assistant": "Assistant"}


def is_reasoning_model(model: str) -> bool:
    """Whether a model name looks like an OpenAI reasoning model (provider prefixes ignored)."""
    return bool(REASONING_NAME.match(model.rsplit("/", 1)[-1].lower()))


@dataclass(frozen=True, slots=True)
class PromptTemplate:
    """How the completions mode turns a conversation into one prompt."""

    template: str
    message: str
    stop: tuple[str, ...]

    def render(self, messages: tuple[ChatMessage, ...]) -> str:
        system = "\n\n".join(m.text for m in messages if m.role == "system")
        turns = "".join(
            # A base model's reply usually starts with the space after "Assistant:": not twice.
            self.message.format(role=ROLE_NAMES.get(m.role, m.role.title()), content=m.text.strip())
            for m in messages
            if m.role != "system"
        )
        return self.template.format(system=system, messages=turns).lstrip()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One backend; `api_key` and `headers` (which may hold tokens) stay out of repr."""

    base_url: str
    model: str
    context_tokens: int
    template: PromptTemplate
    api: ApiMode = "chat"
    name: str = DEFAULT_PROFILE
    api_key: str = field(default="", repr=False)
    headers: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    azure_api_version: str = ""
    azure_deployment: str = ""
    reasoning: bool | None = None
    tools: bool | None = None  # None: whatever the API mode has (completions: no tools)

    @property
    def supports_tools(self) -> bool:
        """Whether requests may offer tools: the completions API has no function calling."""
        return self.api != "completions" and self.tools is not False

    @property
    def is_azure(self) -> bool:
        return bool(self.azure_api_version)

    def url(self, model: str) -> str:
        """The generation URL for this API mode (Azure: the deployment's URL)."""
        path = PATHS[self.api]
        if not self.is_azure:
            return self.base_url + path
        if self.api == "responses":
            return f"{self.base_url}/openai{path}"
        return f"{self.base_url}/openai/deployments/{self.azure_deployment or model}{path}"

    def models_url(self) -> str:
        """`GET` it to see the server is there and the key is accepted."""
        if self.is_azure:
            return f"{self.base_url}/openai/models?api-version={self.azure_api_version}"
        return f"{self.base_url}/models"

    def params(self) -> dict[str, str]:
        return {"api-version": self.azure_api_version} if self.is_azure else {}

    def request_headers(self) -> dict[str, str]:
        headers = {"Accept": "text/event-stream", **dict(self.headers)}
        if self.api_key:
            if self.is_azure:
                headers["api-key"] = self.api_key
            else:
                headers["Authorization"] = f"Bearer {self.api_key}"
        return headers

    def is_reasoning(self, model: str) -> bool:
        return self.reasoning if self.reasoning is not None else is_reasoning_model(model)


def default_endpoint(settings: Settings) -> Endpoint:
    """The backend of the plain settings: the "default" profile."""
    return Endpoint(
        base_url=settings.openai_base_url,
        model=settings.model,
        context_tokens=settings.context_tokens,
        template=PromptTemplate(
            settings.completions_template,
            settings.completions_message_template,
            tuple(settings.completions_stop),
        ),
        api=settings.openai_api,
        api_key=settings.openai_api_key.get_secret_value(),
        headers=tuple(settings.openai_extra_headers.items()),
        azure_api_version=settings.azure_api_version,
        azure_deployment=settings.azure_deployment,
        reasoning=settings.reasoning_model,
    )


def profile_endpoint(name: str, profile: ModelProfile, default: Endpoint) -> Endpoint:
    """A profile's backend; a profile with its own base_url inherits no key and no headers."""
    own_server = profile.base_url is not None
    key = profile.api_key.get_secret_value() if profile.api_key is not None else None
    headers = tuple(profile.headers.items()) if profile.headers is not None else None
    template = default.template
    return Endpoint(
        name=name,
        base_url=profile.base_url or default.base_url,
        model=profile.model,
        context_tokens=profile.context_tokens or default.context_tokens,
        template=PromptTemplate(
            profile.prompt_template or template.template,
            profile.message_template or template.message,
            tuple(profile.stop) if profile.stop is not None else template.stop,
        ),
        api=profile.api,
        api_key=key if key is not None else ("" if own_server else default.api_key),
        headers=headers if headers is not None else (() if own_server else default.headers),
        azure_api_version=profile.azure_api_version,
        azure_deployment=profile.azure_deployment,
        reasoning=profile.reasoning,
        tools=profile.tools,
    )


def endpoints(settings: Settings) -> dict[str, Endpoint]:
    """Every configured backend by profile name, the plain settings as "default"."""
    default = default_endpoint(settings)
    found = {DEFAULT_PROFILE: default}
    for name, profile in settings.model_profiles.items():
        found[name] = profile_endpoint(name, profile, default)
    return found
