"""Prompt building: system prompt (+ summary) + the newest history that fits the token budget.

The system prompt and the new user message are always sent; older turns are dropped oldest
first and whole. History is consumed newest-first and reading stops at the first message that
does not fit, so a long history costs nothing extra. A rolling summary of the turns that left
the window rides in the system message: strict chat templates (Mistral, Gemma) accept only one
system message, and only at the start.

A message is kept or dropped whole, so a tool call never leaves its result behind. Tool
results are large and soon stale: those of older exchanges over `STUB_BYTES` shrink to a stub
first; the newest exchange keeps its results when they fit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterable
from dataclasses import dataclass

from bot.errors import BotError
from bot.llm.tokens import REPLY_PRIMING_TOKENS, TokenCounter
from bot.llm.types import ChatMessage
from bot.parts import Part, ToolResultPart
from bot.prompt.images import at_low_detail, without_images
from bot.values import HistoryItem, Role

SUMMARY_HEADER = "Summary of the earlier conversation:\n"
STUB = "[old tool result of {size} bytes dropped to save space]"
STUB_BYTES = 2_000


def _stub(part: Part) -> Part:
    if not isinstance(part, ToolResultPart) or len(part.text.encode()) <= STUB_BYTES:
        return part
    return dataclasses.replace(part, text=STUB.format(size=len(part.text.encode())), tokens=0)


def stubbed(item: HistoryItem, counter: TokenCounter) -> HistoryItem:
    """`item` with its large tool results replaced by a stub, its tokens recounted."""
    parts = tuple(_stub(part) for part in item.parts)
    if parts == item.parts:
        return item
    parts = counter.counted(parts)
    return dataclasses.replace(item, parts=parts, tokens=counter.count_content(item.role, parts))


def _has_results(item: HistoryItem) -> bool:
    return any(isinstance(part, ToolResultPart) for part in item.parts)


def system_content(system_prompt: str, summary: str) -> str:
    """The one system message: the system prompt, then the summary of older turns, if any."""
    if not summary:
        return system_prompt
    block = SUMMARY_HEADER + summary
    return f"{system_prompt}\n\n{block}" if system_prompt else block


class MessageTooLong(BotError):
    """The new message alone does not fit the prompt budget."""

    def __init__(self, tokens: int, limit: int) -> None:
        super().__init__(f"message of {tokens} tokens; at most {limit} fit")
        self.tokens = tokens
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Prompt:
    messages: tuple[ChatMessage, ...]
    tokens: int  # our count of the whole prompt, reply priming included
    history_kept: int  # earlier messages included, the new one not counted
    with_summary: bool = False
    # Tokens of every message the summary does not cover, the new one included, when the
    # history was read to its end (it all fitted); None when older messages were left out.
    unsummarized_tokens: int | None = None


async def build_prompt(
    *,
    system_prompt: str,
    new_message: HistoryItem,
    history: AsyncIterable[HistoryItem],
    budget: int,
    counter: TokenCounter,
    summary: str = "",
    vision: bool = True,
) -> Prompt:
    """Fit the newest history into `budget` tokens; raise MessageTooLong if nothing fits.

    `history` should hold only what `summary` does not cover; the summary is dropped when the
    new message leaves no room for it. Without `vision` every image goes as its text form; the
    new message's images go at low detail when they do not fit otherwise.
    Past images that do not fit give way to their text form, oldest first, before whole
    messages are dropped (a message is kept if its text form fits).
    """
    if not vision:
        new_message = without_images(new_message, counter)
    system_tokens = counter.count_message(Role.SYSTEM, system_prompt) if system_prompt else 0
    used = REPLY_PRIMING_TOKENS + system_tokens + new_message.tokens
    if used > budget and vision:  # images too costly at their detail: low detail costs less
        used -= new_message.tokens
        new_message = at_low_detail(new_message, counter)
        used += new_message.tokens
    if used > budget:
        raise MessageTooLong(new_message.tokens, budget - (used - new_message.tokens))
    if summary:
        merged = counter.count_message(Role.SYSTEM, system_content(system_prompt, summary))
        if used - system_tokens + merged <= budget:
            used, system_prompt = (
                used - system_tokens + merged,
                system_content(system_prompt, summary),
            )
        else:
            summary = ""
    kept: list[tuple[HistoryItem, HistoryItem]] = []  # (as stored, images as text), newest first
    read_all = True
    newest_exchange = True
    async for item in history:
        if _has_results(item):  # old or oversized tool results give way to a stub first
            if not newest_exchange or used + item.tokens > budget:
                item = stubbed(item, counter)
            newest_exchange = False
        light = without_images(item, counter)
        if used + light.tokens > budget:
            read_all = False
            break
        kept.append((item, light))
        used += light.tokens
    chosen: list[HistoryItem] = []
    for item, light in kept:  # the room left brings images back, newest first
        if vision and item is not light and used + item.tokens - light.tokens <= budget:
            used += item.tokens - light.tokens
            chosen.append(item)
        else:
            chosen.append(light)
    chosen.reverse()
    unsummarized = new_message.tokens + sum(i.tokens for i in chosen) if read_all else None
    # A prompt should not open with an answer whose question was dropped (nor a tool result
    # whose call was).
    while chosen and chosen[0].role in (Role.ASSISTANT, Role.TOOL):
        used -= chosen.pop(0).tokens
    messages = [ChatMessage(Role.SYSTEM, system_prompt)] if system_prompt else []
    messages += [
        ChatMessage(item.role, item.parts or item.content) for item in (*chosen, new_message)
    ]
    return Prompt(tuple(messages), used, len(chosen), bool(summary), unsummarized)
