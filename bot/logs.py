"""Logging set-up that keeps secrets out: the bot token is part of every Bot API URL."""

from __future__ import annotations

import logging

QUIET = ("httpx", "httpcore", "telegram.ext.ExtBot", "telegram.Bot", "apscheduler")


def configure_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", force=True
    )
    for name in QUIET:  # httpx logs each request URL, token included, at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
