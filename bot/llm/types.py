"""Plain values exchanged with the chat/completions API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ChatMessage:
    role: str
    content: str

    def to_json(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True, slots=True)
class Sampling:
    """Optional sampling parameters; None means "let the server decide"."""

    temperature: float | None = None
    top_p: float | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ChatRequest:
    model: str
    messages: tuple[ChatMessage, ...]
    max_tokens: int
    sampling: Sampling = field(default_factory=Sampling)
    user: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The streaming request body, in the public OpenAI shape."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.to_json() for m in self.messages],
            "max_tokens": self.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        s = self.sampling
        optional = {
            "temperature": s.temperature,
            "top_p": s.top_p,
            "presence_penalty": s.presence_penalty,
            "frequency_penalty": s.frequency_penalty,
            "seed": s.seed,
            "stop": list(s.stop) or None,
            "user": self.user,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        return body


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One parsed SSE chunk: a text delta, a reasoning delta, the finish reason, or the usage.

    `reasoning` is the model's thinking (`reasoning_content` deltas and the like); it is
    never part of `text`, the answer.
    """

    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None
    reasoning: str = ""
