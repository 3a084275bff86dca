"""Plain values exchanged with the model server, whichever API mode carries them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.parts import Content, as_prompt_text


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of a prompt: a plain string, or ordered parts (images, tool calls, ...)."""

    role: str
    content: Content

    @property
    def text(self) -> str:
        """The message as prompt text (what a text-only API mode sends)."""
        return as_prompt_text(self.content)


@dataclass(frozen=True, slots=True)
class Sampling:
    """Optional sampling parameters; None means "let the server decide"."""

    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    logit_bias: tuple[tuple[str, float], ...] = ()  # (token id, bias) pairs


@dataclass(frozen=True, slots=True)
class FunctionTool:
    """A function the model may call; `parameters` is its JSON schema (an object)."""

    name: str
    description: str
    parameters: dict[str, Any] = field(hash=False)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    sampling: Sampling = field(default_factory=Sampling)
    user: str | None = None
    profile: str = "default"  # the model profile (MODEL_PROFILES) to ask
    tools: tuple[FunctionTool, ...] = ()  # none: the request has no `tools` key


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed function call, whichever API sent it.

    chat/completions: `index` says which call (some servers omit it; a new `call_id` then
    opens a new call), the name comes once (or repeated) and the arguments in fragments.
    Responses: `item_id` says which call, `index` is its output index, and `whole` marks the
    complete arguments (`.done` events, the final output) that replace the fragments.
    """

    index: int | None = None
    call_id: str = ""
    name: str = ""
    arguments: str = ""
    item_id: str = ""
    whole: bool = False


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One parsed SSE chunk: a text delta, a reasoning delta, tool-call pieces, the finish
    reason, or the usage.

    `reasoning` is the model's thinking (`reasoning_content` deltas and the like); it is
    never part of `text`, the answer.
    """

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    reasoning: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
