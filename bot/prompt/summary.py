"""Rolling summary: turns that leave the token budget are folded into a running summary.

After a reply is stored, the turn hands its conversation to `Summarizer.after_turn`, which
returns at once. A background job (at most one per chat at a time) checks whether the part of
the conversation the summary does not cover has outgrown the room the prompt has for it, and if
so folds its oldest turns into the summary with one extra model call. Folding starts before
anything falls out of the window (at FOLD_AT of the room) and goes down to FOLD_TO, so prompts
keep every message the summary does not cover, and a fold happens every few turns, not every
turn. A failed fold changes nothing; the next turn tries again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.chat_config import ChatConfig
from bot.config import Settings
from bot.db import store, summaries
from bot.db.summaries import SummaryItem
from bot.errors import ContextLengthError, LLMError
from bot.llm.backends import ModelClient
from bot.llm.reasoning import split_reasoning
from bot.llm.tokens import REPLY_PRIMING_TOKENS, TokenCounter
from bot.llm.types import ChatMessage, ChatRequest, Usage
from bot.prompt.fit import SUMMARY_HEADER
from bot.prompt.recall import NO_UPPER_BOUND, Recall
from bot.values import HistoryItem, Role

logger = logging.getLogger(__name__)

FOLD_AT = 0.75
FOLD_TO = 0.5
MAX_CALLS_PER_JOB = 4
HEADER_RESERVE = 16  # the summary header and the blank line joining it to the system prompt
INSTRUCTION = (
    "You maintain a running summary of a chat between a user and an assistant. Merge the "
    "summary so far and the new messages into one updated summary. Keep names, facts, "
    "preferences, decisions and open questions; drop small talk. Write compact prose in the "
    "language of the conversation, at most {words} words. Answer with the summary only."
)
LABELS = {Role.USER: "User", Role.ASSISTANT: "Assistant"}


def summary_cap(settings: Settings, budget: int) -> int:
    """Longest summary: SUMMARY_MAX_TOKENS, and never more than a quarter of the budget."""
    return max(16, min(settings.summary_max_tokens, budget // 4))


@dataclass(frozen=True, slots=True)
class SummaryJob:
    chat_id: int
    conversation_id: int
    user_id: int
    config: ChatConfig
    # What the turn already knows: the unsummarized messages' tokens (None: not known), so
    # that a conversation far from its window needs no database read to decide.
    unsummarized_tokens: int | None = None


class Summarizer:
    """Runs fold jobs in the background, one chat at a time each."""

    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        client: ModelClient,
        recall: Recall,
        user_hash: Callable[[int], str],
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._client = client
        self._recall = recall
        self._user_hash = user_hash
        self._tasks: dict[int, asyncio.Task[None]] = {}
        self._wanted: dict[int, dict[int, SummaryJob]] = {}

    def after_turn(self, job: SummaryJob) -> None:
        """Queue a check of the conversation; never waits."""
        if not job.config.summary_enabled:
            return
        self._wanted.setdefault(job.chat_id, {})[job.conversation_id] = job
        if job.chat_id not in self._tasks:
            self._tasks[job.chat_id] = asyncio.create_task(self._run(job.chat_id))

    async def idle(self) -> None:
        """Wait until no job runs (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def aclose(self) -> None:
        """Cancel running jobs (a half-done fold is simply not stored)."""
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self, chat_id: int) -> None:
        try:
            while wanted := self._wanted.get(chat_id):
                _, job = wanted.popitem()
                try:
                    await self.fold(job)
                except (LLMError, SQLAlchemyError) as exc:
                    logger.warning("chat %s: summary not updated: %s", chat_id, exc)
                except Exception:  # a background job has no caller to report to
                    logger.exception("chat %s: summary job failed", chat_id)
        finally:
            del self._tasks[chat_id]
            self._wanted.pop(chat_id, None)

    async def fold(self, job: SummaryJob) -> int:
        """Fold the oldest unsummarized turns if they outgrew their room; return calls made."""
        config, counter = job.config, TokenCounter(job.config.model)
        budget = self._recall.budget(config)
        cap = summary_cap(self._settings, budget)
        system = config.system_prompt
        room = budget - REPLY_PRIMING_TOKENS - cap - HEADER_RESERVE
        room -= counter.count_message(Role.SYSTEM, system) if system else 0
        if job.unsummarized_tokens is not None and job.unsummarized_tokens <= room * FOLD_AT:
            return 0
        chunk_limit = self._chunk_limit(config, counter, cap)
        async with self._sessions() as session:
            summary = await summaries.latest(session, job.conversation_id)
            older = await self._overflow(session, job.conversation_id, summary, room, chunk_limit)
        calls = 0
        while older and calls < MAX_CALLS_PER_JOB:
            chunk = _take_chunk(older, chunk_limit)
            summary = await self._fold_chunk(job, counter, summary, chunk, cap)
            calls += 1
            if summary is None:
                break
        return calls

    def _chunk_limit(self, config: ChatConfig, counter: TokenCounter, cap: int) -> int:
        """Transcript tokens one summary call may carry next to the summary so far."""
        window = self._recall.calibration.budget(config.model, config.context_tokens, cap)
        instruction = counter.count_message(Role.SYSTEM, INSTRUCTION.format(words=cap))
        return window - REPLY_PRIMING_TOKENS - instruction - cap - 2 * HEADER_RESERVE

    async def _overflow(
        self,
        session: AsyncSession,
        conversation_id: int,
        summary: SummaryItem | None,
        room: int,
        chunk_limit: int,
    ) -> list[HistoryItem]:
        """The oldest unsummarized messages to fold (oldest first), or [] if all still fit."""
        kept: list[HistoryItem] = []
        older: list[HistoryItem] = []
        kept_tokens = older_tokens = 0
        history = store.history_newest_first(
            session,
            conversation_id,
            NO_UPPER_BOUND,
            after_id=summary.last_message_id if summary else 0,
        )
        async with contextlib.aclosing(history):
            async for item in history:
                if not older and kept_tokens + item.tokens <= room * FOLD_TO:
                    kept.append(item)
                    kept_tokens += item.tokens
                    continue
                older.append(item)
                older_tokens += item.tokens
                if older_tokens >= chunk_limit * MAX_CALLS_PER_JOB:
                    break  # a longer backlog (summary was off) is left out, not folded
        while kept and kept[-1].role == Role.ASSISTANT:  # keep a question with its answer
            older.insert(0, kept.pop())
            kept_tokens -= older[0].tokens
        if kept_tokens + older_tokens <= room * FOLD_AT:
            return []
        older.reverse()
        return older

    async def _fold_chunk(
        self,
        job: SummaryJob,
        counter: TokenCounter,
        summary: SummaryItem | None,
        chunk: list[HistoryItem],
        cap: int,
    ) -> SummaryItem | None:
        """One summary call folding `chunk` into `summary`; the new summary, once stored."""
        model = job.config.model
        transcript = "\n".join(_line(item, cap) for item in chunk)
        so_far = summary.content if summary else "(nothing yet)"
        messages = (
            ChatMessage(Role.SYSTEM, INSTRUCTION.format(words=cap)),
            ChatMessage(Role.USER, f"Summary so far:\n{so_far}\n\nNew messages:\n{transcript}"),
        )
        ours = REPLY_PRIMING_TOKENS + sum(
            counter.count_content(m.role, m.content) for m in messages
        )
        request = ChatRequest(model, messages, cap, user=self._user_hash(job.user_id))
        started = time.monotonic()
        text, usage = "", None
        try:
            async for event in self._client.stream(request):
                text += event.text
                usage = event.usage or usage
        except ContextLengthError as exc:
            self._recall.calibration.learn_from_error(model, ours, str(exc))
            raise
        text = split_reasoning(text)[0].strip()
        if usage is not None:
            self._recall.calibration.observe(model, ours, usage.prompt_tokens)
        reported = usage is not None
        usage = usage or Usage(ours, counter.count_text(text))
        first = summary.first_message_id if summary else chunk[0].id
        tokens = counter.count_message(Role.SYSTEM, SUMMARY_HEADER + text)
        async with self._sessions.begin() as session:
            await store.add_usage(
                session,
                chat_id=job.chat_id,
                user_id=job.user_id,
                model=model,
                kind="summary",
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                reported=reported,
                latency_ms=round((time.monotonic() - started) * 1000),
            )
            if not text:
                return None
            stored = await summaries.add(
                session,
                conversation_id=job.conversation_id,
                based_on=summary,
                first_message_id=first,
                last_message_id=chunk[-1].id,
                content=text,
                tokens=tokens,
                model=model,
            )
            found = await summaries.latest(session, job.conversation_id) if stored else None
        logger.info("chat %s: summary now covers up to message %s", job.chat_id, chunk[-1].id)
        return found


def _take_chunk(older: list[HistoryItem], limit: int) -> list[HistoryItem]:
    """Pop the oldest messages that fit `limit` tokens (at least one) off `older`."""
    size, used = 0, 0
    while size < len(older) and (size == 0 or used + older[size].tokens <= limit):
        used += older[size].tokens
        size += 1
    chunk = older[:size]
    del older[:size]
    return chunk


def _line(item: HistoryItem, cap: int) -> str:
    """One transcript line; a huge message is cut (the summary keeps its gist anyway)."""
    text = item.content if len(item.content) <= 8 * cap else item.content[: 8 * cap] + " […]"
    return f"{LABELS.get(Role(item.role), item.role)}: {text}"
