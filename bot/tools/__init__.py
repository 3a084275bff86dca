"""Tools the model may call: a registry, an MCP client, built-ins, and the per-turn loop.

The turn asks this package for the tools of a chat (`ToolRegistry.request_tools`) and for
the results of a step's calls (`ToolLoop.step`); the streamed calls are put together by
`ToolCallAccumulator`. Calls and results are `bot.parts` values, stored and replayed like any
other part. See `bot.tools.loop` for the contract of one turn. The MCP client
(`bot.tools.mcp_client`) is not imported here: only a bot with MCP servers loads the SDK.
"""

from __future__ import annotations

from bot.tools.builtins import ImageBackend, register_builtins
from bot.tools.calls import (
    CallStarted,
    InvalidToolArguments,
    ToolCallAccumulator,
    argument_error,
    decode_arguments,
)
from bot.tools.loop import StepOutcome, ToolLoop, ToolStatus, stopped_results
from bot.tools.registry import ToolRegistry, ToolSpec, namespaced
from bot.tools.runner import ToolResult, ToolRunner, ToolUnavailable
from bot.tools.types import Attachment, ToolContext, ToolOutput

__all__ = [
    "Attachment",
    "CallStarted",
    "ImageBackend",
    "InvalidToolArguments",
    "StepOutcome",
    "ToolCallAccumulator",
    "ToolContext",
    "ToolLoop",
    "ToolOutput",
    "ToolRegistry",
    "ToolResult",
    "ToolRunner",
    "ToolSpec",
    "ToolStatus",
    "ToolUnavailable",
    "argument_error",
    "decode_arguments",
    "namespaced",
    "register_builtins",
    "stopped_results",
]
