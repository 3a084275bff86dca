"""Settings of the tools package, read from the environment and `.env` like `bot.config`.

Kept here until the lead folds them into `bot.config.Settings`; the names are the variables.
``MCP_SERVERS`` is JSON: a list of server objects, or an object of them keyed by name
(the ``mcpServers`` shape of MCP client configs)::

    [{"name": "web", "command": "uvx", "args": ["mcp-server-fetch"], "env": {"KEY": "…"}},
     {"name": "docs", "url": "https://mcp.example/mcp", "headers": {"Authorization": "…"},
      "confirm": ["delete_page"], "timeout": 20}]

Env values and headers are secrets: `SecretStr`, so no repr, log line or tool description
shows them.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

BUILTIN_NAMES = ("fetch_url", "current_time", "generate_image")
SERVER_NAME = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class McpServerConfig(BaseModel):
    """One operator-configured MCP server: a stdio command or a streamable HTTP URL."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=SERVER_NAME.pattern)
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, SecretStr] = Field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    #: Tool names (as the server calls them) that ask the user first; "*" means all.
    confirm: frozenset[str] = frozenset()
    timeout: float | None = Field(
        None, gt=0, description="Per-call timeout; default TOOLS_TIMEOUT."
    )

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"MCP server {self.name!r}: give exactly one of 'command' or 'url'")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"MCP server {self.name!r}: 'url' must be http(s)")
        return self

    @property
    def transport(self) -> str:
        return "stdio" if self.command is not None else "http"

    def needs_confirmation(self, tool: str) -> bool:
        return "*" in self.confirm or tool in self.confirm


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class ToolSettings(BaseSettings):
    """What the tool loop, the MCP client and the built-ins read."""

    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", frozen=True
    )

    tools_enabled: bool = Field(True, description="Offer tools to backends that support them.")
    mcp_servers: Annotated[tuple[McpServerConfig, ...], NoDecode] = ()
    tools_max_steps: int = Field(8, ge=1, le=64, description="Model → tools rounds per turn.")
    tools_timeout: float = Field(30.0, gt=0, description="Seconds one tool call may take.")
    tools_turn_timeout: float = Field(180.0, gt=0, description="Seconds for a turn's tool loop.")
    tools_result_max_bytes: int = Field(
        32_000, ge=256, description="Longest tool result given to the model (UTF-8 bytes)."
    )
    mcp_connect_timeout: float = Field(20.0, gt=0, description="Seconds to connect to a server.")
    builtin_tools: Annotated[frozenset[str], NoDecode] = frozenset(BUILTIN_NAMES)
    fetch_allow_private: bool = Field(
        False, description="Let fetch_url reach loopback/private/link-local addresses."
    )
    fetch_allowed_networks: Annotated[tuple[str, ...], NoDecode] = ()
    fetch_max_bytes: int = Field(2_000_000, ge=1_024, description="Bytes fetch_url downloads.")
    fetch_timeout: float = Field(15.0, gt=0, description="Seconds fetch_url may take.")
    default_timezone: str = Field("UTC", description="IANA zone for current_time.")
    image_model: str = Field("gpt-image-1", min_length=1)
    image_size: str = Field("1024x1024", pattern=r"^(auto|\d{3,4}x\d{3,4})$")

    @field_validator("mcp_servers", mode="before")
    @classmethod
    def _servers(cls, value: Any) -> Any:
        if isinstance(value, str):
            if not value.strip():
                return ()
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError("expected JSON") from None
        if isinstance(value, dict):
            value = [{"name": name, **conf} for name, conf in value.items()]
        return value

    @field_validator("mcp_servers")
    @classmethod
    def _unique(cls, value: tuple[McpServerConfig, ...]) -> tuple[McpServerConfig, ...]:
        names = [s.name for s in value]
        if len(names) != len(set(names)):
            raise ValueError("MCP server names must be unique")
        return value

    @field_validator("builtin_tools", mode="before")
    @classmethod
    def _builtins(cls, value: Any) -> Any:
        value = _split(value)
        unknown = set(value or ()) - set(BUILTIN_NAMES)
        if unknown:
            raise ValueError(f"unknown built-in tools: {', '.join(sorted(unknown))}")
        return value

    @field_validator("fetch_allowed_networks", mode="before")
    @classmethod
    def _networks(cls, value: Any) -> Any:
        value = _split(value)
        for network in value or ():
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        return value

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value
