"""/forget leaves no trace of the user in any table, and other members' data stays."""

from __future__ import annotations

import asyncio

from sqlalchemy import Connection, String, Text, func, inspect, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Chat, Message, Summary, UpdateLog, User
from bot.telegram.app import BotRuntime
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, is_summary_request
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows

ZEB = 5150
BOB = 2002
GROUP = -100515
NAME, USERNAME, WORD = "Zebulon", "zeb_unique", "quixotic-marmalade"
MARKERS = (NAME, USERNAME, WORD)
SMALL_WINDOW = {"context_tokens": 700, "max_reply_tokens": 100, "edit_interval": 0.2}


def text_columns(connection: Connection) -> list[tuple[str, str]]:
    """(table, column) of every text or varchar column of every table in the database."""
    schema = inspect(connection)
    return [
        (table, column["name"])
        for table in schema.get_table_names()
        for column in schema.get_columns(table)
        if isinstance(column["type"], String | Text)
    ]


async def traces(engine: AsyncEngine) -> list[tuple[str, str, str]]:
    """Every (table, column, marker) where a marker of the user is stored."""
    found = []
    async with engine.connect() as conn:
        columns = await conn.run_sync(text_columns)
        assert ("update_log", "payload") in columns and ("messages", "content") in columns
        for table, column in columns:
            for marker in MARKERS:
                hits = await conn.scalar(
                    text(f'SELECT count(*) FROM "{table}" WHERE lower("{column}") LIKE :m'),
                    {"m": f"%{marker.lower()}%"},
                )
                if hits:
                    found.append((table, column, marker))
    return found


async def group_turn(telegram: BotAPIEmulator, user_id: int, name: str, words: str) -> None:
    kwargs = {"user_id": user_id, "first_name": name, "chat_type": "supergroup"}
    if user_id == ZEB:
        kwargs["username"] = USERNAME
    telegram.send_text(GROUP, f"@memory_test_bot {words}", **kwargs)  # type: ignore[arg-type]
    await telegram.wait_for(lambda: shows(telegram, GROUP, f"Echo: {name}: {words}"), timeout=15)


async def settle(runtime: BotRuntime, telegram: BotAPIEmulator, engine: AsyncEngine) -> None:
    """Wait until no update is pending and no summary is being written."""
    await telegram.wait_for(lambda: telegram.pending_updates() == 0)
    assert runtime.runner is not None
    await runtime.runner.summarizer.idle()
    sessions = create_sessionmaker(engine)
    for _ in range(200):
        async with sessions() as session:
            pending = await session.scalar(
                select(func.count()).select_from(UpdateLog).where(UpdateLog.done.is_(False))
            )
        if not pending:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("updates stayed pending")


async def test_forget_leaves_no_trace_in_any_table(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    settings = make_settings(admin_user_ids=frozenset({ZEB}), **SMALL_WINDOW)
    engine = create_engine(database_url)
    try:
        async with BotRuntime(settings) as runtime:
            me = {"first_name": NAME, "username": USERNAME}
            await ask(telegram, ZEB, f"in private: {WORD}", **me)
            telegram.send_text(ZEB, f"/setprompt Always mention {WORD}.", **me)
            telegram.send_text(ZEB, f"/set stop {WORD}", **me)
            await telegram.wait_for(lambda: len(telegram.bot_messages(ZEB)) == 3)
            await group_turn(telegram, BOB, "Bob", "bob speaks first")
            turn = 0
            while not any(is_summary_request(b) for b in model.chat_requests()):
                turn += 1
                await group_turn(
                    telegram, ZEB, NAME, f"{WORD} number {turn}" + " and more words" * 12
                )
                await group_turn(telegram, BOB, "Bob", f"bob's line {turn}")
            await settle(runtime, telegram, engine)
            before = {(table, column) for table, column, _ in await traces(engine)}
            assert {("users", "first_name"), ("messages", "content"), ("audit", "new_value")} <= (
                before
            )
            assert ("chats", "system_prompt") in before and ("summaries", "content") in before

            telegram.send_text(ZEB, "/forget", **me)
            await telegram.wait_for(lambda: bool(telegram.bot_messages(ZEB)[-1].reply_markup))
            button = telegram.bot_messages(ZEB)[-1].message_id
            telegram.press_button(ZEB, button, f"forget:{ZEB}:yes", user_id=ZEB)
            await telegram.wait_for(
                lambda: telegram.bot_messages(ZEB)[-1].text.startswith("Done: deleted")
            )
            await settle(runtime, telegram, engine)

            assert await traces(engine) == []
            async with create_sessionmaker(engine)() as session:
                zeb = await session.get(User, ZEB)
                bob = await session.get(User, BOB)
                private = await session.get(Chat, ZEB)
                kept = list(
                    await session.scalars(
                        select(Message.content).where(Message.chat_id == GROUP).order_by(Message.id)
                    )
                )
                summaries = await session.scalar(select(func.count()).select_from(Summary))
            assert zeb is not None and (zeb.username, zeb.language_code, zeb.first_name) == (
                None,
                None,
                "",
            )
            assert private is not None and (private.system_prompt, private.stop) == (None, None)
            assert bob is not None and bob.first_name == "Bob"
            assert kept[:2] == ["Bob: bob speaks first", "Echo: Bob: bob speaks first"]
            assert f"Bob: bob's line {turn}" in kept and len(kept) == 2 * (turn + 1)
            assert summaries == 0

            model.requests.clear()
            await ask(telegram, ZEB, "who am I?")  # a fresh start: nothing of before is sent
            sent = [str(m["content"]) for m in model.chat_requests()[-1]["messages"]]
            assert not any(WORD in s for s in sent)
    finally:
        await engine.dispose()
