"""The prompt of a turn: system prompt, the conversation's summary and the recent turns that fit.

The budget is the context window minus the reply reserve, rescaled by what the server's own
counts taught (`Calibration`), so a model whose tokenizer counts more than ours still fits.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.chat_config import ChatConfig
from bot.config import Settings
from bot.db import store, summaries
from bot.llm.tokens import TokenCounter
from bot.prompt.calibration import Calibration
from bot.prompt.fit import Prompt, build_prompt
from bot.values import HistoryItem, Role

NO_UPPER_BOUND = 2**62  # a message id above every stored one


@dataclass(frozen=True, slots=True)
class Remembered:
    """What /memory shows: the summary in force and how much recent history fits."""

    summary: str
    summary_tokens: int
    recent_messages: int
    recent_tokens: int
    budget: int


class Recall:
    """Builds prompts from the stored conversation, summary included."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        calibration: Calibration,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self.calibration = calibration

    def budget(self, config: ChatConfig) -> int:
        """Prompt tokens (our count) a turn may use with this configuration."""
        return self.calibration.budget(config.model, config.context_tokens, config.max_reply_tokens)

    async def prompt(
        self,
        conversation_id: int,
        config: ChatConfig,
        new: HistoryItem,
        counter: TokenCounter,
        *,
        shrink: float = 1.0,
        session: AsyncSession | None = None,
    ) -> Prompt:
        """The prompt for `new`, read in `session` if given (the turn's own transaction);
        `shrink` < 1 trims harder (after a context-length error)."""
        budget = math.floor(self.budget(config) * shrink)
        if session is not None:
            return await self._build(session, conversation_id, config, new, counter, budget)
        async with self._sessions() as own:
            return await self._build(own, conversation_id, config, new, counter, budget)

    async def remembered(self, conversation_id: int, config: ChatConfig) -> Remembered:
        """What the next prompt would carry, before any new message."""
        counter = TokenCounter(config.model)
        empty = HistoryItem(NO_UPPER_BOUND, Role.USER, "", 0)
        budget = self.budget(config)
        async with self._sessions() as session:
            summary = await summaries.latest(session, conversation_id)
            prompt = await self._build(session, conversation_id, config, empty, counter, budget)
        shown = summary if summary is not None and prompt.with_summary else None
        system = config.system_prompt
        base = counter.count_message(Role.SYSTEM, system) if system else 0
        recent = sum(
            counter.count_content(m.role, m.content)
            for m in prompt.messages[1 if system or shown else 0 : -1]
        )
        return Remembered(
            shown.content if shown else "",
            shown.tokens if shown else 0,
            prompt.history_kept,
            recent,
            budget - base,
        )

    async def _build(
        self,
        session: AsyncSession,
        conversation_id: int,
        config: ChatConfig,
        new: HistoryItem,
        counter: TokenCounter,
        budget: int,
    ) -> Prompt:
        summary = (
            await summaries.latest(session, conversation_id) if config.summary_enabled else None
        )
        history = store.history_newest_first(
            session, conversation_id, new.id, after_id=summary.last_message_id if summary else 0
        )
        async with contextlib.aclosing(history):
            return await build_prompt(
                system_prompt=config.system_prompt,
                new_message=new,
                history=history,
                budget=budget,
                counter=counter,
                summary=summary.content if summary else "",
                vision=config.vision,
            )
