"""Tools the model may call: a registry, an MCP client, built-ins, and the per-turn loop.

The turn asks this package for the tools of a chat (`ToolRegistry.request_tools`) and for
the results of a step's calls (`ToolLoop.step`); the streamed calls are put together by
`ChatToolCallAccumulator` / `ResponsesToolCallAccumulator`. See `bot.tools.loop` for the
contract of one turn.
"""

from __future__ import annotations

from bot.tools.builtins import ImageBackend, register_builtins
from bot.tools.calls import (
    CallStarted,
    ChatToolCallAccumulator,
    InvalidToolArguments,
    ResponsesToolCallAccumulator,
    ToolCall,
)
from bot.tools.loop import StepOutcome, ToolLoop, ToolStatus, chat_messages, responses_items
from bot.tools.mcp_client import McpConnection, McpManager
from bot.tools.registry import ToolRegistry, ToolSpec, namespaced
from bot.tools.runner import ToolResult, ToolRunner, ToolUnavailable
from bot.tools.settings import McpServerConfig, ToolSettings
from bot.tools.types import Attachment, ToolContext, ToolOutput

__all__ = [
    "Attachment",
    "CallStarted",
    "ChatToolCallAccumulator",
    "ImageBackend",
    "InvalidToolArguments",
    "McpConnection",
    "McpManager",
    "McpServerConfig",
    "ResponsesToolCallAccumulator",
    "StepOutcome",
    "ToolCall",
    "ToolContext",
    "ToolLoop",
    "ToolOutput",
    "ToolRegistry",
    "ToolResult",
    "ToolRunner",
    "ToolSettings",
    "ToolSpec",
    "ToolStatus",
    "ToolUnavailable",
    "chat_messages",
    "namespaced",
    "register_builtins",
    "responses_items",
]
