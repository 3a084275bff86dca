"""Built-in ``current_time``: the date and time now, in the user's (or a named) IANA zone."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.tools.registry import ToolSpec
from bot.tools.types import JSONObject, ToolContext, ToolOutput

SPEC = ToolSpec(
    name="current_time",
    description=(
        "Current date and time. Without arguments: in the user's time zone. "
        "Pass an IANA time zone (e.g. 'Europe/Berlin') for another place."
    ),
    parameters={
        "type": "object",
        "properties": {
            "timezone": {"type": "string", "description": "IANA time zone name, optional."}
        },
    },
)


class CurrentTime:
    """Answers in the argument's zone, else the user's, else the operator's default."""

    def __init__(self, default_zone: str, now: Callable[[], datetime] | None = None) -> None:
        self.default_zone = default_zone
        self._now = now or (lambda: datetime.now(UTC))

    async def __call__(self, arguments: JSONObject, context: ToolContext) -> ToolOutput:
        requested = arguments.get("timezone")
        name = requested if isinstance(requested, str) and requested.strip() else None
        name = (name or context.timezone or self.default_zone).strip()
        try:
            zone = ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            return ToolOutput(f"Error: unknown time zone {name[:64]!r}; use an IANA name.", True)
        now = self._now().astimezone(zone)
        offset = now.strftime("%z")
        text = (
            f"{now.strftime('%A, %Y-%m-%d %H:%M:%S')} {now.tzname()} "
            f"(UTC{offset[:3]}:{offset[3:]}, time zone {name})"
        )
        return ToolOutput(text)
