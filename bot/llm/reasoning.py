"""Keep a model's thinking apart from its answer, as the reply streams in.

Reasoning models send their thinking either as `reasoning_content` deltas (kept apart by the
client) or inline as `<think>…</think>` in the content. `ThinkSplitter` takes content deltas
and splits them: text inside a block (also one still open mid-stream) is reasoning, the rest
is the answer. A tag cut across two deltas (`<thi` + `nk>`) is held back until it is known.
Some chat templates put the opening tag in the prompt, so the model sends only `</think>`:
an orphan closing tag turns everything before it into reasoning.
"""

from __future__ import annotations

OPEN = "<think>"
CLOSE = "</think>"


def _partial_tag(text: str, tags: tuple[str, ...]) -> int:
    """Length of the longest suffix of `text` that is a proper prefix of one of `tags`."""
    longest = 0
    for tag in tags:
        for size in range(min(len(tag) - 1, len(text)), longest, -1):
            if text.endswith(tag[:size]):
                longest = size
                break
    return longest


class ThinkSplitter:
    """Splits streamed content into the answer and the reasoning."""

    def __init__(self) -> None:
        self._answer: list[str] = []
        self._reasoning: list[str] = []
        self._pending = ""  # a possible tag cut by the delta boundary
        self._inside = False
        self._seen_tag = False

    @property
    def answer(self) -> str:
        text = "".join(self._answer)
        return text.lstrip() if self._seen_tag or self._reasoning else text

    @property
    def reasoning(self) -> str:
        return "".join(self._reasoning).strip()

    def add_reasoning(self, text: str) -> None:
        """A reasoning delta the server sent apart (`reasoning_content`)."""
        self._reasoning.append(text)

    def feed(self, text: str) -> None:
        """Take one content delta."""
        buffer = self._pending + text
        self._pending = ""
        while buffer:
            buffer = self._step(buffer)

    def finish(self) -> None:
        """The stream ended: a held-back partial tag was text after all."""
        (self._reasoning if self._inside else self._answer).append(self._pending)
        self._pending = ""

    def _step(self, buffer: str) -> str:
        """Consume a prefix of `buffer`; return what is left to consume."""
        if self._inside:
            end = buffer.find(CLOSE)
            if end < 0:
                return self._hold(buffer, self._reasoning, (CLOSE,))
            self._reasoning.append(buffer[:end])
            self._inside = False
            return buffer[end + len(CLOSE) :]
        start, end = buffer.find(OPEN), buffer.find(CLOSE)
        if end >= 0 and not self._seen_tag and (start < 0 or end < start):
            self._reasoning += [*self._answer, buffer[:end]]
            self._answer.clear()
            self._seen_tag = True
            return buffer[end + len(CLOSE) :]
        if start < 0:
            return self._hold(buffer, self._answer, (OPEN, CLOSE))
        self._answer.append(buffer[:start])
        self._inside = self._seen_tag = True
        return buffer[start + len(OPEN) :]

    def _hold(self, buffer: str, into: list[str], tags: tuple[str, ...]) -> str:
        keep = _partial_tag(buffer, tags)
        into.append(buffer[: len(buffer) - keep])
        self._pending = buffer[len(buffer) - keep :]
        return ""


def split_reasoning(text: str) -> tuple[str, str]:
    """(answer, reasoning) of a complete text."""
    splitter = ThinkSplitter()
    splitter.feed(text)
    splitter.finish()
    return splitter.answer, splitter.reasoning
