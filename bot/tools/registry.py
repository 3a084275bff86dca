"""The tools the bot can offer, by the name the model sees, in each API's request shape.

Names follow OpenAI's rule ``^[a-zA-Z0-9_-]{1,64}$``. An MCP tool is offered as
``server__tool`` (characters outside the rule become ``_``; a name past 64 characters keeps
its head and gets a short hash), so two servers may both have a ``search``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from bot.llm.types import FunctionTool
from bot.tools.types import JSONObject, ToolHandler

NAME_RULE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
SEPARATOR = "__"
MAX_NAME = 64


def _clean(part: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", part) or "_"


def namespaced(server: str, tool: str) -> str:
    """The model-facing name of ``tool`` on MCP server ``server``."""
    name = f"{_clean(server)}{SEPARATOR}{_clean(tool)}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:8]
    return f"{name[: MAX_NAME - 9]}_{digest}"


def object_schema(schema: JSONObject | None) -> JSONObject:
    """A parameters schema the APIs accept: a JSON-schema object at the top level."""
    schema = dict(schema or {})
    if schema.get("type") != "object":
        schema = {"type": "object", "properties": {}}
    if not isinstance(schema.get("properties"), dict):
        schema["properties"] = {}
    return schema


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool as offered to the model, and where calls to it go."""

    name: str  # what the model sees and calls
    description: str
    parameters: JSONObject = field(default_factory=lambda: {"type": "object", "properties": {}})
    needs_confirmation: bool = False
    timeout: float | None = None  # seconds per call; None: TOOLS_TIMEOUT
    source: str = "builtin"  # "builtin" or "mcp:<server>"
    remote_name: str = ""  # the tool's own name on its MCP server

    def __post_init__(self) -> None:
        if not NAME_RULE.match(self.name):
            raise ValueError(f"tool name {self.name!r} does not match {NAME_RULE.pattern}")

    @property
    def function(self) -> FunctionTool:
        """The tool as a request offers it (`bot.llm.bodies` gives it each API's shape)."""
        return FunctionTool(self.name, self.description, dict(self.parameters))


@dataclass(frozen=True, slots=True)
class RegisteredTool:
    spec: ToolSpec
    handler: ToolHandler


class ToolRegistry:
    """Every tool the bot knows; MCP servers replace their own entries when they (re)list."""

    def __init__(self) -> None:
        self._tools: dict[str, RegisteredTool] = {}

    def add(self, spec: ToolSpec, handler: ToolHandler) -> None:
        """Register one tool; a second tool with the same name is refused."""
        if spec.name in self._tools:
            raise ValueError(f"tool {spec.name!r} is registered twice")
        self._tools[spec.name] = RegisteredTool(spec, handler)

    def replace_source(self, source: str, tools: Iterable[RegisteredTool]) -> None:
        """Swap every tool of ``source`` for ``tools`` (an MCP server's fresh listing)."""
        kept = {n: t for n, t in self._tools.items() if t.spec.source != source}
        for tool in tools:
            if tool.spec.name in kept:
                raise ValueError(f"tool {tool.spec.name!r} is registered twice")
            kept[tool.spec.name] = tool
        self._tools = kept

    def get(self, name: str) -> RegisteredTool | None:
        return self._tools.get(name)

    def specs(self, disabled: Collection[str] = ()) -> list[ToolSpec]:
        """The tools on offer, by name, without the ``disabled`` ones (a chat's choice)."""
        return [self._tools[n].spec for n in sorted(self._tools) if n not in disabled]

    def request_tools(self, disabled: Collection[str] = ()) -> tuple[FunctionTool, ...]:
        """The request's tools; empty means: send no ``tools`` key at all."""
        return tuple(s.function for s in self.specs(disabled))
