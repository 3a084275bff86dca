"""Command line: `python -m bot run` serves the bot; `migrate` upgrades the schema; `console`
chats with the configured backend in a terminal; `export` writes conversations as JSONL."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError
from telegram.error import InvalidToken, NetworkError

from bot.config import Settings, load_settings
from bot.console import CONSOLE_CHAT, console_settings, run_console
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.migrate import upgrade_to_head
from bot.db.userdata import all_conversations
from bot.errors import BotError, ConfigError
from bot.export import to_jsonl
from bot.logs import configure_logging
from bot.telegram.app import BotRuntime
from bot.telegram.poller_guard import AnotherPoller

logger = logging.getLogger("bot")

EXIT_CONFIG = 2
EXIT_FAILURE = 1
EXIT_ANOTHER_POLLER = 3


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
        description="Telegram chat bot with conversation memory. Settings come from the "
        "environment or a .env file (see README.md).",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="migrate the database, then serve the bot (long polling or webhook)",
        description="Apply pending migrations, then serve the bot until SIGINT or SIGTERM "
        "(then running replies get SHUTDOWN_GRACE_SECONDS to finish).",
    )
    run.add_argument(
        "--webhook", action="store_true", help="take updates by webhook (same as MODE=webhook)"
    )
    export = commands.add_parser(
        "export",
        help="write every stored conversation as fine-tuning JSONL",
        description="Write all conversations in OpenAI's fine-tuning chat format "
        '({"messages": [...]} per line) to a file or standard output.',
    )
    export.add_argument("--output", "-o", default="-", help="file to write (default: stdout)")
    console = commands.add_parser(
        "console",
        help="chat with the configured backend in the terminal (same memory and prompts)",
        description="Each line of standard input is a message; replies stream to standard "
        "output. /reset starts a new conversation, /quit or end of input leaves.",
    )
    console.add_argument(
        "--chat",
        type=int,
        default=CONSOLE_CHAT,
        help="chat id whose memory and settings to use (default: 0, the console's own)",
    )
    commands.add_parser(
        "migrate",
        help="upgrade the database schema to the newest revision and exit",
        description="Upgrade the database in DATABASE_URL to the newest Alembic revision.",
    )
    return parser


async def _serve(settings: Settings) -> None:
    runtime = BotRuntime(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runtime.must_stop.set)
    async with runtime:
        await runtime.must_stop.wait()
        logger.info("stopping: no new updates; finishing running replies")
    if runtime.halted_by is not None:
        raise runtime.halted_by


async def _migrate(settings: Settings) -> None:
    engine = create_engine(settings.resolved_database_url)
    try:
        await upgrade_to_head(engine)
    finally:
        await engine.dispose()


async def _export(settings: Settings) -> str:
    engine = create_engine(settings.resolved_database_url)
    try:
        await upgrade_to_head(engine)
        async with create_sessionmaker(engine)() as session:
            return to_jsonl(await all_conversations(session))
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "console":
            settings = console_settings()
        else:
            overrides = {"mode": "webhook"} if getattr(args, "webhook", False) else {}
            settings = load_settings(**overrides)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    configure_logging(settings.log_level)
    try:
        if args.command == "run":
            asyncio.run(_serve(settings))
        elif args.command == "console":
            asyncio.run(run_console(settings, args.chat))
        elif args.command == "export":
            text = asyncio.run(_export(settings))
            if args.output == "-":
                sys.stdout.write(text)
            else:
                Path(args.output).write_text(text, encoding="utf-8")
        else:
            asyncio.run(_migrate(settings))
    except InvalidToken:
        print("config error: TELEGRAM_BOT_TOKEN was rejected by Telegram", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 0
    except AnotherPoller as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ANOTHER_POLLER
    except (NetworkError, SQLAlchemyError, OSError, BotError) as exc:
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


if __name__ == "__main__":
    sys.exit(main())
