"""What a turn asks of the tools package: which tools a chat offers, and a loop to run them.

One `Toolbox` per bot, made at start-up (`Toolbox.start`: built-ins registered, MCP servers
connected) and closed at shutdown. A turn offers tools only when TOOLS_ENABLED, the chat's
backend has function calling (completions mode never does) and some tool is left on.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import httpx

from bot.config import Settings
from bot.llm.types import FunctionTool
from bot.tools.builtins import ImageBackend, register_builtins
from bot.tools.loop import OnStatus, ToolLoop
from bot.tools.mcp_client import McpManager
from bot.tools.registry import ToolRegistry
from bot.tools.runner import Confirm, ToolRunner
from bot.tools.types import ToolContext

#: Whether a model profile's backend supports function calling.
SupportsTools = Callable[[str], bool]


class Toolbox:
    """The bot's tools: the registry, its MCP servers, and the settings that bound a turn."""

    def __init__(self, settings: Settings, registry: ToolRegistry, supports: SupportsTools) -> None:
        self.settings = settings
        self.registry = registry
        self.mcp = McpManager.from_settings(registry, settings)
        self._supports = supports

    @classmethod
    def build(
        cls,
        settings: Settings,
        supports: SupportsTools,
        http: httpx.AsyncClient | None = None,
        images: tuple[str, str] | None = None,
    ) -> Toolbox:
        """A toolbox with the enabled built-ins; ``images`` is the (base URL, API key) that
        ``generate_image`` posts to over ``http``."""
        registry = ToolRegistry()
        backend = ImageBackend(http, *images) if http is not None and images else None
        register_builtins(registry, settings, backend)
        return cls(settings, registry, supports)

    async def start(self) -> None:
        """Connect the MCP servers (one that is down keeps retrying in the background)."""
        await self.mcp.start()

    async def aclose(self) -> None:
        await self.mcp.close()

    def names(self) -> list[str]:
        """Every tool's model-facing name, sorted (what /tools lists)."""
        return [spec.name for spec in self.registry.specs()]

    def offered(self, profile: str, disabled: Collection[str]) -> tuple[FunctionTool, ...]:
        """The tools a request of this chat carries; empty: no tools, no loop."""
        if not self.settings.tools_enabled or not self._supports(profile):
            return ()
        return self.registry.request_tools(disabled)

    def loop(
        self,
        context: ToolContext,
        *,
        disabled: Collection[str] = (),
        confirm: Confirm | None = None,
        on_status: OnStatus | None = None,
    ) -> ToolLoop:
        """A fresh loop for one turn, bounded by TOOLS_MAX_STEPS and TOOLS_TURN_TIMEOUT."""
        settings = self.settings
        runner = ToolRunner(
            self.registry,
            timeout=settings.tools_timeout,
            max_result_bytes=settings.tools_result_max_bytes,
            confirm=confirm,
            disabled=frozenset(disabled),
        )
        return ToolLoop(
            runner,
            context,
            max_steps=settings.tools_max_steps,
            timeout=settings.tools_turn_timeout,
            on_status=on_status,
        )
