"""Logging set-up that keeps secrets out: the bot token is part of every Bot API URL."""

from __future__ import annotations

import logging

# httpx logs each request URL at INFO; PTB's bot logs its API URL and call parameters at DEBUG.
QUIET = ("httpx", "httpcore", "telegram.ext.ExtBot", "telegram.Bot", "apscheduler")


def quiet_secret_loggers() -> None:
    """Cap the loggers that print Bot API URLs at WARNING, whatever the root level is."""
    for name in QUIET:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:  # NOTSET too: it would inherit the root's level
            logger.setLevel(logging.WARNING)


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", force=True
    )
    quiet_secret_loggers()
