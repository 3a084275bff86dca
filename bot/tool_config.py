"""The operator's tool configuration: MCP servers (MCP_SERVERS) and the built-ins' checks.

``MCP_SERVERS`` is JSON: a list of server objects, or an object of them keyed by name
(the ``mcpServers`` shape of MCP client configs)::

    [{"name": "web", "command": "uvx", "args": ["mcp-server-fetch"], "env": {"KEY": "…"}},
     {"name": "docs", "url": "https://mcp.example/mcp", "headers": {"Authorization": "…"},
      "confirm": ["delete_page"], "timeout": 20}]

Env values and headers are secrets: `SecretStr`, so no repr, log line or tool description
shows them. `bot.config.Settings` validates its tool settings with the functions here.
"""

from __future__ import annotations

import ipaddress
import json
import re
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

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


def split_list(value: Any) -> Any:
    """A comma-separated environment value as a list (other values as they are)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def parse_servers(value: Any) -> Any:
    """MCP_SERVERS as a list of server objects (JSON text, a list, or an object by name)."""
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


def check_unique(servers: tuple[McpServerConfig, ...]) -> tuple[McpServerConfig, ...]:
    names = [s.name for s in servers]
    if len(names) != len(set(names)):
        raise ValueError("MCP server names must be unique")
    return servers


def check_builtins(value: Any) -> Any:
    value = split_list(value)
    unknown = set(value or ()) - set(BUILTIN_NAMES)
    if unknown:
        raise ValueError(f"unknown built-in tools: {', '.join(sorted(unknown))}")
    return value


def check_networks(value: Any) -> Any:
    value = split_list(value)
    for network in value or ():
        ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
    return value


def check_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {value!r}") from None
    return value
