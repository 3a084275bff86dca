"""Plain values of the tools package: JSON, a call's outcome, attachments, per-call context."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

JSON = dict[str, "JSON"] | list["JSON"] | str | int | float | bool | None
JSONObject = dict[str, JSON]

#: Why a call ended, for the live status line and the logs (the frontend words it).
ResultStatus = Literal[
    "ok",  # the tool answered
    "tool_error",  # the tool answered with an error (MCP `isError`, a built-in's refusal)
    "failed",  # the tool raised
    "timeout",  # the tool did not answer within the per-call timeout
    "unknown_tool",  # the model named a tool that is not offered
    "bad_arguments",  # the model's arguments are not a JSON object
    "declined",  # the user declined a tool that needs confirmation
    "unavailable",  # its MCP server is down
    "step_limit",  # the loop's step limit or deadline was reached
    "stopped",  # /stop cut the call short
]


@dataclass(frozen=True, slots=True)
class Attachment:
    """Bytes a tool hands to the frontend (an image to send as a photo)."""

    kind: Literal["photo"]
    data: bytes = field(repr=False)
    mime_type: str
    caption: str = ""


@dataclass(frozen=True, slots=True)
class ToolOutput:
    """What a tool handler returns; the runner turns it into a `ToolResult`."""

    text: str
    is_error: bool = False
    attachments: tuple[Attachment, ...] = ()


@dataclass(frozen=True, slots=True)
class ToolContext:
    """Who a call runs for: the tools that need it read the user's time zone."""

    chat_id: int = 0
    user_id: int = 0
    timezone: str | None = None  # IANA name, e.g. "Europe/Berlin"


class ToolHandler(Protocol):
    """Runs one tool: arguments already decoded into a JSON object."""

    async def __call__(self, arguments: JSONObject, context: ToolContext) -> ToolOutput: ...
