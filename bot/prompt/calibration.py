"""How far our offline token counts are from the server's, learned per model as the bot runs.

Our count is exact for OpenAI's own models and an estimate for the rest; a server with another
tokenizer or chat template may count more. Every reply reports `usage.prompt_tokens`; the ratio
to our count is kept per model (the largest of the recent ones, to err on the safe side) and
scales the prompt budget, so the next turn fits the first time. A context-length error teaches
the same from its message, and also the server's real window when it is smaller than
CONTEXT_TOKENS. Kept in process memory: a restart relearns it within a turn or two.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass

# "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens
# (4000 in the messages, 1000 in the completion)." (OpenAI, vLLM and most proxies)
WINDOW = re.compile(r"maximum context length is (\d+) tokens", re.IGNORECASE)
REQUESTED = re.compile(r"(\d+) in the messages, (\d+) in the completion", re.IGNORECASE)
RECENT = 20  # ratios remembered per model
MIN_FACTOR, MAX_FACTOR = 0.8, 4.0
BLIND_CUT = 1.25  # the error said nothing usable: trim by a quarter
RETRY_MARGIN = 0.95  # the retried prompt aims a little under the limit the error taught


@dataclass(frozen=True, slots=True)
class ContextReport:
    """What a context-length error says: the window, and the server's counts when given."""

    window: int | None
    prompt_tokens: int | None
    completion_tokens: int | None


def parse_context_error(message: str) -> ContextReport:
    window = WINDOW.search(message)
    requested = REQUESTED.search(message)
    return ContextReport(
        int(window.group(1)) if window else None,
        int(requested.group(1)) if requested else None,
        int(requested.group(2)) if requested else None,
    )


class Calibration:
    """Per-model correction factors (server count ÷ our count) and learned context windows."""

    def __init__(self) -> None:
        self._ratios: dict[str, deque[float]] = {}
        self._windows: dict[str, int] = {}

    def factor(self, model: str) -> float:
        ratios = self._ratios.get(model)
        return min(MAX_FACTOR, max(MIN_FACTOR, max(ratios))) if ratios else 1.0

    def window(self, model: str, configured: int) -> int:
        return min(configured, self._windows.get(model, configured))

    def observe(self, model: str, ours: int, theirs: int) -> None:
        """Learn from a server's reported prompt tokens for a prompt we counted as `ours`."""
        if ours > 0 and theirs > 0:
            self._ratios.setdefault(model, deque(maxlen=RECENT)).append(theirs / ours)

    def budget(self, model: str, context_tokens: int, reserve: int) -> int:
        """The prompt budget in our own count: the (learned) window minus `reserve`, rescaled."""
        room = self.window(model, context_tokens) - reserve
        return math.floor(room / self.factor(model))

    def learn_from_error(self, model: str, ours: int, message: str) -> None:
        """A prompt we counted as `ours` was refused as too long; learn what the error tells."""
        report = parse_context_error(message)
        if report.window is not None:
            self._windows[model] = min(report.window, self._windows.get(model, report.window))
        if report.prompt_tokens is not None:
            self.observe(model, ours, report.prompt_tokens)
        else:  # no counts given: assume we undercount by a quarter
            self.observe(model, ours, math.ceil(ours * self.factor(model) * BLIND_CUT))
