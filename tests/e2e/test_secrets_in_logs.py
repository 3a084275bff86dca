"""Every log record of a full session, at DEBUG on the root logger, is free of secrets.

The bot token is part of every Bot API URL and the API key of every model request header, so
any library logging URLs, headers or request parameters would leak them.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import pytest

from bot.errors import LLMServerError
from bot.logs import QUIET
from bot.telegram.app import BotRuntime
from bot.wording import render
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, texts

ADMIN = 7
ALICE = 1001
GROUP = -100500


class Everything(logging.Handler):
    """Keeps each record as every handler could render it: message, args, traceback."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        parts = [record.name, record.getMessage(), repr(record.args), repr(record.__dict__)]
        if record.exc_info and record.exc_info[1] is not None:
            parts.append("".join(traceback.format_exception(record.exc_info[1])))
        self.lines.append(" ".join(parts))


@pytest.fixture
def captured() -> Iterator[Everything]:
    """Root at DEBUG and every logger at its default, as if nothing had set logging up."""
    root = logging.getLogger()
    handler = Everything()
    levels = {name: logging.getLogger(name).level for name in ("", *QUIET)}
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.NOTSET)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def test_a_full_session_logged_at_debug_never_contains_the_token_or_the_api_key(
    captured: Everything,
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
) -> None:
    settings = make_settings(admin_user_ids=frozenset({ADMIN}))
    async with BotRuntime(settings):
        await ask(telegram, ALICE, "hello")
        model.enqueue(*[Reply(status=500)] * 3)  # an error the user is told about
        telegram.send_text(ALICE, "fail please")
        await telegram.wait_for(lambda: render(LLMServerError.problem) in texts(telegram, ALICE))
        telegram.fail_next(
            "sendMessage", status=429, description="Too Many Requests: retry after 1", retry_after=1
        )
        telegram.drop_next("getUpdates")
        await ask(telegram, ALICE, "after the faults")
        telegram.send_text(ADMIN, "/setglobal temperature 0.5", user_id=ADMIN)
        telegram.send_text(ALICE, "/setglobal temperature 2", user_id=ALICE)  # refused
        telegram.send_text(ADMIN, "/stats", user_id=ADMIN)
        await telegram.wait_for(lambda: len(texts(telegram, ADMIN)) == 2)
        await telegram.wait_for(lambda: "admins" in texts(telegram, ALICE)[-1])

    log = "\n".join(captured.lines)
    for event in ("is polling", "model stream failed", "while polling", "HTTP 500", "Shut down"):
        assert event in log, f"the session was not fully logged: no {event!r}"
    token = settings.telegram_bot_token.get_secret_value()
    assert token.split(":", 1)[1] not in log, "the bot token leaked into the logs"
    assert settings.openai_api_key.get_secret_value() not in log, "the API key leaked"
