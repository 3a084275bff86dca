"""A reply that grows live: first text as a message, then throttled updates, then the final text.

One background task owns all Telegram calls of a reply, so the model stream never waits on
Telegram. Two modes:

- edit: the message is edited in place; text past 4096 UTF-16 units continues in a new message.
- draft (private chats): the growing part is streamed with `sendMessageDraft` (Bot API 10),
  and every finished part is sent as a real message.

Updates are spaced by the chat's interval and never repeat what is shown; text that grew by
several messages at once (one huge delta) gets one new message per interval, not a burst. A 429
pushes the next call back by `retry_after`, doubles the interval for the rest of the reply, and
newer text simply replaces the pending update. Formatting refused by Telegram falls back to
plain text.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from telegram import ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import ExtBot

from bot.notices import Notice
from bot.parts import ToolCallPart
from bot.reply_sink import Final, ReplyEvent, ToolActivity
from bot.runtime.ratelimit import RateLimitArgs, retry_seconds
from bot.telegram.render import Part, render_markdown, render_plain, with_reasoning
from bot.tools.types import Attachment
from bot.wording import appended, render, tool_details, tool_lines

logger = logging.getLogger(__name__)

TYPING_REFRESH = 4.5  # Telegram shows "typing…" for about 5 s
# "typing…" only once the model keeps the user waiting: a reply whose first text comes sooner
# shows that text instead, and the chat action would be a Telegram call for nothing.
TYPING_DELAY = 1.0
FINAL_ATTEMPTS = 8
MAX_INTERVAL = 10.0
NOT_MODIFIED = "message is not modified"
EDIT_TARGET_GONE = "message to edit not found"
FORMAT_REJECTED = ("can't parse entities", "entit", "message is too long")

# Told the ids of the reply's messages each time a new one appears (awaited: the caller stores
# them before the reply goes on, so a crash never leaves a shown message unknown).
MessagesShown = Callable[[Sequence[int]], Awaitable[None]]
# Asks the user whether a tool call may run (bot.telegram.tool_confirm), bound to the chat.
AskToRun = Callable[[ToolCallPart, str], Awaitable[bool]]


class TelegramReply:
    """Shows one streamed reply in a chat; implements `bot.reply_sink.ReplySink`."""

    def __init__(
        self,
        bot: ExtBot[Any],
        chat_id: int,
        *,
        reply_to: int | None,
        interval: float,
        thread_id: int | None = None,
        drafts: bool = False,
        ask_to_run: AskToRun | None = None,
    ) -> None:
        self._bot = bot
        self._ask_to_run = ask_to_run
        self._chat_id = chat_id
        self._reply_to = reply_to
        self._interval = interval
        self._thread_id = thread_id
        self._drafts = drafts
        self._draft_base = random.randint(1, 2**30)
        self._draft_shown: Part | None = None
        self._latest = ""
        self._reasoning = ""  # shown collapsed above the answer (SHOW_REASONING)
        self._sent: list[tuple[int, Part]] = []  # (message id, what it shows) per part
        self._plain = False  # Telegram refused our formatting once: plain text from then on
        self._next_call = 0.0  # the cadence: when the next intermediate update may go
        self._not_before = 0.0  # a 429's retry_after: nothing goes before it
        self._wake = asyncio.Event()
        self._finishing = asyncio.Event()
        self._final = False
        self._blocked = False
        self._flusher: asyncio.Task[None] | None = None
        self._typing: asyncio.Task[None] | None = None
        self._on_message: MessagesShown | None = None

    @property
    def message_ids(self) -> list[int]:
        return [message_id for message_id, _ in self._sent if message_id]

    def watch(self, on_message: MessagesShown) -> None:
        """Call `on_message` with the message ids whenever a new message of the reply exists."""
        self._on_message = on_message

    def messages_for(self, text: str, notice: Notice | None = None) -> int:
        """How many Telegram messages `text` (and the notice after it) takes once shown."""
        text = appended(text, notice)
        return len(render_plain(text) if self._plain else render_markdown(text, final=True))

    def resume(self, message_ids: Sequence[int], text: str) -> None:
        """Take over the messages a previous run showed `text` in, before `finish`: all but the
        last are taken as shown, so finishing edits only the last one (and adds any missing)."""
        parts = render_markdown(text, final=True)
        last = len(message_ids) - 1
        self._sent = [
            (message_id, parts[index] if index < min(last, len(parts)) else Part(""))
            for index, message_id in enumerate(message_ids)
        ]

    async def begin(self) -> None:
        self._typing = asyncio.create_task(self._keep_typing())

    def show(self, event: ReplyEvent) -> None:
        if isinstance(event, ToolActivity):  # status lines, until the answer replaces them
            text = tool_lines(event.calls)
            reasoning = tool_details(event.calls) if event.details else ""
        else:
            text, reasoning = event.text, event.reasoning
        self._latest, self._reasoning = text, reasoning
        self._wake.set()
        if self._flusher is None and (text.strip() or reasoning.strip()):
            self._start_flusher()

    async def finish(self, final: Final) -> list[int]:
        self._latest, self._reasoning = appended(final.text, final.notice), final.reasoning
        self._final = True
        self._wake.set()
        self._finishing.set()
        if self._flusher is None:
            self._start_flusher()
        assert self._flusher is not None
        await self._flusher
        for attachment in final.attachments:
            await self._call_until_done(functools.partial(self._send_photo, attachment))
        return self.message_ids

    async def confirm(self, call: ToolCallPart, title: str) -> bool:
        """Ask whether a tool may run (buttons in the chat); no way to ask is a no."""
        return await self._ask_to_run(call, title) if self._ask_to_run is not None else False

    async def _send_photo(self, attachment: Attachment) -> None:
        reply_to = self._sent[-1][0] if self._sent else self._reply_to
        await self._bot.send_photo(
            self._chat_id,
            attachment.data,
            caption=attachment.caption[:1024] or None,
            message_thread_id=self._thread_id,
            reply_parameters=(
                ReplyParameters(reply_to, allow_sending_without_reply=True) if reply_to else None
            ),
        )

    async def say(self, notice: Notice) -> None:
        self._stop_typing()
        text = render(notice)
        await self._call_until_done(lambda: self._send(Part(text), self._reply_to))

    async def close(self) -> None:
        """Cancel background work (when the turn itself is cancelled)."""
        self._stop_typing()
        if self._flusher is not None and not self._flusher.done():
            self._flusher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._flusher

    def _start_flusher(self) -> None:
        self._stop_typing()
        self._flusher = asyncio.create_task(self._flush_loop())

    def _stop_typing(self) -> None:
        if self._typing is not None:
            self._typing.cancel()
            self._typing = None

    async def _keep_typing(self) -> None:
        await asyncio.sleep(TYPING_DELAY)
        while True:
            with contextlib.suppress(TelegramError):
                await self._bot.send_chat_action(
                    self._chat_id, ChatAction.TYPING, message_thread_id=self._thread_id
                )
            await asyncio.sleep(TYPING_REFRESH)

    async def _flush_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if (delay := self._next_call - time.monotonic()) > 0:
                # The final text does not wait for the cadence, only for a 429's retry_after;
                # the rate limiter's per-chat bucket keeps it within Telegram's limits.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._finishing.wait(), delay)
            if (delay := self._not_before - time.monotonic()) > 0:
                await asyncio.sleep(delay)
            if self._final:
                await self._call_until_done(self._sync)
                return
            await self._sync_once()

    @property
    def _limits(self) -> RateLimitArgs:
        """Intermediate updates fail fast on a 429 (newer text will replace them)."""
        return {} if self._final else {"max_retries": 0}

    async def _sync_once(self) -> None:
        """Bring Telegram up to the latest text; on failure, the next wake-up tries again."""
        try:
            await self._sync()
        except RetryAfter as exc:
            self._back_off(exc)
            self._wake.set()  # try again once allowed, with whatever text is newest then
        except NetworkError as exc:  # includes TimedOut; the next push retries
            logger.info("chat %s: update failed, will retry: %s", self._chat_id, exc)
        except TelegramError as exc:  # the final sync tries again; never kill the stream
            logger.warning("chat %s: Telegram refused an update: %s", self._chat_id, exc)

    def _back_off(self, exc: RetryAfter) -> None:
        self._interval = min(self._interval * 2, MAX_INTERVAL)
        self._not_before = time.monotonic() + retry_seconds(exc)
        self._next_call = max(self._next_call, self._not_before)

    async def _call_until_done(self, call: Callable[[], Awaitable[object]]) -> None:
        """Run a final sync (or send) through 429s and network errors, a bounded number of times."""
        for attempt in range(1, FINAL_ATTEMPTS + 1):
            if self._blocked:
                return
            try:
                await call()
                return
            except RetryAfter as exc:
                self._back_off(exc)
                await asyncio.sleep(retry_seconds(exc))
            except BadRequest as exc:  # a NetworkError in PTB, but trying again cannot help
                logger.warning("chat %s: Telegram refused the reply: %s", self._chat_id, exc)
                return
            except NetworkError as exc:
                logger.info("chat %s: send failed (%s), attempt %d", self._chat_id, exc, attempt)
                await asyncio.sleep(min(2.0**attempt, 30.0))
            except TelegramError as exc:
                logger.warning("chat %s: Telegram refused the reply: %s", self._chat_id, exc)
                return
        logger.warning("chat %s: gave up showing the reply", self._chat_id)

    def _parts(self) -> list[Part]:
        if self._plain:
            return render_plain(self._latest)
        return with_reasoning(render_markdown(self._latest, final=self._final), self._reasoning)

    async def _sync(self) -> None:
        """Show the latest text; on refused formatting, once more as plain text."""
        try:
            await self._sync_parts()
        except BadRequest as exc:
            if self._plain or not any(m in exc.message.lower() for m in FORMAT_REJECTED):
                raise
            logger.warning("chat %s: formatting refused (%s); plain text", self._chat_id, exc)
            self._plain = True
            await self._sync_parts()

    async def _sync_parts(self) -> None:
        parts = self._parts()
        # In draft mode only finished parts become messages; the growing one is a draft.
        settled = parts if (self._final or not self._drafts) else parts[:-1]
        for index, part in enumerate(settled):
            if self._blocked:
                return
            if index < len(self._sent):
                message_id, shown = self._sent[index]
                if shown != part:
                    await self._edit(index, message_id, part)
                continue
            reply_to = self._reply_to if index == 0 else self._sent[-1][0]
            self._sent.append((await self._send(part, reply_to), part))
            await self._report()
            if not self._final and index + 1 < len(settled):
                self._wake.set()  # the next new message waits for the next interval
                return
        if len(settled) < len(parts) and parts[-1] != self._draft_shown:
            await self._draft(len(parts) - 1, parts[-1])

    async def _send(self, part: Part, reply_to: int | None) -> int:
        self._next_call = time.monotonic() + self._interval
        try:
            message = await self._bot.send_message(
                self._chat_id,
                part.text,
                entities=part.telegram_entities(),
                message_thread_id=self._thread_id,
                reply_parameters=(
                    ReplyParameters(reply_to, allow_sending_without_reply=True)
                    if reply_to
                    else None
                ),
                rate_limit_args=self._limits,
            )
        except Forbidden as exc:
            self._blocked = True
            logger.info("chat %s: cannot send (%s)", self._chat_id, exc.message)
            return 0
        return message.message_id

    async def _edit(self, index: int, message_id: int, part: Part) -> None:
        self._next_call = time.monotonic() + self._interval
        try:
            await self._bot.edit_message_text(
                part.text,
                self._chat_id,
                message_id,
                entities=part.telegram_entities(),
                rate_limit_args=self._limits,
            )
        except BadRequest as exc:
            if NOT_MODIFIED in exc.message.lower():
                pass
            elif EDIT_TARGET_GONE in exc.message.lower():  # the user deleted it: show it anew
                message_id = await self._send(part, None)
                self._sent[index] = (message_id, part)
                await self._report()
            else:
                raise
        except Forbidden as exc:
            self._blocked = True
            logger.info("chat %s: cannot edit (%s)", self._chat_id, exc.message)
        self._sent[index] = (message_id, part)

    async def _report(self) -> None:
        if self._on_message is not None and self.message_ids:
            await self._on_message(self.message_ids)

    async def _draft(self, index: int, part: Part) -> None:
        self._next_call = time.monotonic() + self._interval
        await self._bot.send_message_draft(
            self._chat_id,
            self._draft_base + index,
            part.text,
            message_thread_id=self._thread_id,
            entities=part.telegram_entities(),
            rate_limit_args=self._limits,
        )
        self._draft_shown = part
