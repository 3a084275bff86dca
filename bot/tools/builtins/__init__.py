"""Tools that need no MCP server: ``fetch_url``, ``current_time``, ``generate_image``."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from bot.config import Settings
from bot.tools.builtins import current_time, fetch_url, generate_image
from bot.tools.builtins.address_guard import AddressGuard
from bot.tools.registry import ToolRegistry


@dataclass(frozen=True, slots=True)
class ImageBackend:
    """Where ``generate_image`` sends its requests (the bot's model server)."""

    client: httpx.AsyncClient
    base_url: str
    api_key: str

    def __repr__(self) -> str:
        return f"ImageBackend(base_url={self.base_url!r})"


def register_builtins(
    registry: ToolRegistry, settings: Settings, images: ImageBackend | None = None
) -> list[str]:
    """Register the built-ins ``BUILTIN_TOOLS`` enables; returns their names.

    ``generate_image`` needs ``images``: without it (or for a backend without an images
    endpoint) it is left out.
    """
    enabled = settings.builtin_tools
    if "current_time" in enabled:
        registry.add(current_time.SPEC, current_time.CurrentTime(settings.default_timezone))
    if "fetch_url" in enabled:
        guard = AddressGuard(
            allow_private=settings.fetch_allow_private,
            allowed_networks=settings.fetch_allowed_networks,
        )
        tool = fetch_url.FetchUrl(
            guard, max_bytes=settings.fetch_max_bytes, timeout=settings.fetch_timeout
        )
        registry.add(fetch_url.SPEC, tool)
    if "generate_image" in enabled and images is not None:
        image_tool = generate_image.GenerateImage(
            images.client,
            base_url=images.base_url,
            api_key=images.api_key,
            model=settings.image_model,
            size=settings.image_size,
        )
        registry.add(generate_image.SPEC, image_tool)
    return [s.name for s in registry.specs() if s.source == "builtin"]
