"""`python -m bot console`: chat with the configured backend in a terminal.

The same engine as the bot (stored memory, trimming, system prompts, profiles, the backend in
the settings), so an operator can try a backend and a prompt before going live. Each line of
standard input is a message; the reply streams to standard output as it arrives. `/reset`
starts a new conversation; `/quit` or end of input leaves. Logs go to standard error.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from typing import TextIO

from bot.config import Settings, load_settings
from bot.conversation import Incoming
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import upgrade_to_head
from bot.errors import ConfigError
from bot.llm.backends import Backends
from bot.notices import Notice
from bot.reply_sink import Final, ReplyEvent, ToolActivity
from bot.runtime.http_transport import model_http_client
from bot.tools.toolbox import Toolbox
from bot.turn import TurnRunner
from bot.values import ChatInfo, UserInfo
from bot.wording import appended, render, tool_lines

CONSOLE_CHAT = 0  # Telegram never uses chat id 0
# The console never talks to Telegram, so a bot token is not needed to try a backend.
PLACEHOLDER_TOKEN = "0:console"
PROMPT = "you> "


class ConsoleSink:
    """Shows a streamed reply in a terminal: each push prints only what is new."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._shown = ""

    async def begin(self) -> None:
        self._shown = ""

    def show(self, event: ReplyEvent) -> None:
        """Stream the answer; with SHOW_REASONING, the thinking until the answer starts; the
        status of tool calls while they run."""
        if isinstance(event, ToolActivity):
            self._write(tool_lines(event.calls))
            return
        text, reasoning = event.text, event.reasoning
        self._write(text or (f"[thinking] {reasoning}" if reasoning else ""))

    async def finish(self, final: Final) -> list[int]:
        self._write(appended(final.text, final.notice))
        for attachment in final.attachments:
            self._out.write(f"\n[{attachment.kind}: {attachment.caption or attachment.mime_type}]")
        self._out.write("\n")
        self._out.flush()
        return []

    async def say(self, notice: Notice) -> None:
        self._out.write(render(notice) + "\n")
        self._out.flush()

    def _write(self, text: str) -> None:
        if text.startswith(self._shown):
            self._out.write(text[len(self._shown) :])
        else:  # the text changed under us: start a fresh line
            self._out.write("\n" + text)
        self._shown = text
        self._out.flush()


def console_settings() -> Settings:
    """The settings, with a placeholder bot token when TELEGRAM_BOT_TOKEN is the only gap."""
    try:
        return load_settings()
    except ConfigError as exc:
        if str(exc) != "TELEGRAM_BOT_TOKEN is not set":
            raise
    return load_settings(telegram_bot_token=PLACEHOLDER_TOKEN)


def message_ids() -> itertools.count[int]:
    """Negative message ids, unique per run, never clashing with Telegram's positive ones."""
    return itertools.count(-(time.time_ns() // 1000), -1)


async def run_console(
    settings: Settings,
    chat_id: int = CONSOLE_CHAT,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> None:
    """Read messages from `stdin` until end of input, answering each on `stdout`."""
    engine = create_engine(settings.resolved_database_url)
    http = model_http_client(settings)
    backends = Backends.from_settings(http, settings)
    toolbox = Toolbox.for_backends(settings, backends, http)
    try:
        await upgrade_to_head(engine)
        await toolbox.start()
        runner = TurnRunner(settings, create_sessionmaker(engine), backends, toolbox)
        chat = ChatInfo(chat_id, "private", "console")
        user = UserInfo(chat_id, "Console")
        sink, ids, interactive = ConsoleSink(stdout), message_ids(), stdin.isatty()
        while True:
            if interactive:
                stdout.write(PROMPT)
                stdout.flush()
            line = await asyncio.to_thread(stdin.readline)
            text = line.strip()
            if not line or text == "/quit":
                return
            if text == "/reset":
                await runner.conversations.reset(chat, user)
                stdout.write("(new conversation)\n")
            elif text:
                await runner.run(Incoming(chat, user, text, next(ids)), sink)
            stdout.flush()
    finally:
        await toolbox.aclose()
        await http.aclose()
        await engine.dispose()
