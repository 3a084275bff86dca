"""Security over the emulators: no side door to admin actions, no history shared across users,
and hostile strings stored and read back intact (SQL only through bound parameters)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import Audit, Chat, GlobalSetting, Message, User
from bot.telegram.admin import REFUSAL
from bot.telegram.app import BotRuntime
from bot.telegram.userdata_commands import NOT_YOURS, STALE_BUTTON
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages, texts

ADMIN = 7
ALICE = 1001
BOB = 2002
GROUP = -100900
ANONYMOUS_ADMIN_BOT = 1087968824  # the `from` of messages sent by anonymous group admins
EVIL = "/setglobal model evil-model"
BOT = "memory_test_bot"


@pytest.fixture
async def admin_bot(make_settings: SettingsFactory) -> AsyncIterator[BotRuntime]:
    async with BotRuntime(make_settings(admin_user_ids=frozenset({ADMIN}))) as runtime:
        yield runtime


async def count(database_url: str, table: Any) -> int:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(table)) or 0)
    finally:
        await engine.dispose()


async def assert_nothing_changed(
    telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    assert await count(database_url, Audit) == 0
    assert await count(database_url, GlobalSetting) == 0
    await ask(telegram, BOB, "is everything normal?")
    assert model.chat_requests()[-1]["model"] == "gpt-4o-mini"


async def test_admin_commands_by_side_doors_do_nothing_for_a_non_admin(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    # A caption is not a command (for anyone): the photo is only a photo (here one whose file
    # Telegram cannot give).
    entity = {"type": "bot_command", "offset": 0, "length": len("/setglobal")}
    telegram.send_message(ALICE, photo=[{}], caption=EVIL, caption_entities=[entity])
    # An edit into a command is ignored like any edit.
    hello = telegram.send_text(ALICE, "hello")
    await telegram.wait_for(lambda: shows(telegram, ALICE, "Echo: hello"))
    telegram.edit_text(ALICE, hello["message_id"], EVIL)
    # A command addressed to this bot by name, a forwarded admin command, an anonymous admin.
    group = {"chat_type": "supergroup", "chat_title": "'); DROP TABLE chats;--"}
    telegram.send_text(GROUP, f"/setglobal@{BOT} model evil-model", user_id=ALICE, **group)
    admin_user = {"id": ADMIN, "is_bot": False, "first_name": "Admin"}
    origin = {"type": "user", "sender_user": admin_user, "date": 1}
    telegram.send_message(GROUP, user_id=BOB, text=EVIL, forward_origin=origin, **group)
    anonymous = {"id": GROUP, "type": "supergroup", "title": "Test group"}
    telegram.send_message(
        GROUP, user_id=ANONYMOUS_ADMIN_BOT, text=EVIL, sender_chat=anonymous, **group
    )
    await telegram.wait_for(lambda: texts(telegram, GROUP).count(REFUSAL) == 3)
    await telegram.wait_for(lambda: len(texts(telegram, ALICE)) == 2)

    assert texts(telegram, ALICE)[0].startswith("Telegram no longer has that file")
    assert texts(telegram, ALICE)[1] == "Echo: hello", "the edit was not answered"
    assert texts(telegram, GROUP) == [REFUSAL] * 3
    assert [r["messages"][-1]["content"] for r in model.chat_requests()] == ["hello"]
    await assert_nothing_changed(telegram, model, database_url)


async def forget_button(telegram: BotAPIEmulator, user_id: int) -> int:
    """The bot message holding `user_id`'s /forget confirmation buttons."""
    telegram.send_text(GROUP, f"/forget@{BOT}", user_id=user_id, chat_type="supergroup")
    await telegram.wait_for(lambda: any(m.reply_markup for m in telegram.bot_messages(GROUP)))
    return next(m.message_id for m in telegram.bot_messages(GROUP) if m.reply_markup)


FORGED = {
    "other-users-yes": (f"forget:{ALICE}:yes", NOT_YOURS),
    "other-users-no": (f"forget:{ALICE}:no", NOT_YOURS),
    "empty": ("forget:", STALE_BUTTON),
    "no-answer": (f"forget:{ALICE}", STALE_BUTTON),
    "garbage": (f"forget:{ALICE}:yes:{BOB}", STALE_BUTTON),
    "unknown-prefix": ("admin:stats", STALE_BUTTON),
}


@pytest.mark.parametrize(("data", "reply"), FORGED.values(), ids=FORGED.keys())
async def test_forged_callback_data_deletes_nothing_and_breaks_nothing(
    admin_bot: BotRuntime,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
    data: str,
    reply: str,
) -> None:
    telegram.send_text(GROUP, f"@{BOT} my data", user_id=ALICE, chat_type="supergroup")
    await telegram.wait_for(lambda: shows(telegram, GROUP, "Echo: Alice: my data"))
    button = await forget_button(telegram, ALICE)
    before = len(texts(telegram, GROUP))

    telegram.press_button(GROUP, button, data, user_id=BOB)
    await telegram.wait_for(lambda: len(telegram.calls_for("answerCallbackQuery")) == 1)

    answer = telegram.calls_for("answerCallbackQuery")[0]
    assert answer.status == 200
    assert answer.params.get("text") == reply
    assert len(texts(telegram, GROUP)) == before, "no message, no edit, no error report"
    assert [m.content for m in await stored_messages(database_url, GROUP)] == [
        "Alice: my data",
        "Echo: Alice: my data",
    ]
    await assert_nothing_changed(telegram, model, database_url)


def prompt_texts(request: dict[str, Any]) -> str:
    return "\n".join(str(m["content"]) for m in request["messages"])


async def test_no_users_history_ever_enters_another_users_prompt(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    telegram.send_text(GROUP, f"/memory@{BOT} user", user_id=ADMIN, chat_type="supergroup")
    await telegram.wait_for(lambda: len(texts(telegram, GROUP)) == 1)
    people = {ALICE: "Alice", BOB: "Bob"}
    for turn in range(3):
        for user_id, name in people.items():
            telegram.send_text(user_id, f"{name.lower()}-private-{turn}", first_name=name)
            telegram.send_text(
                GROUP,
                f"@{BOT} {name.lower()}-group-{turn}",
                user_id=user_id,
                chat_type="supergroup",
                first_name=name,
            )
        await telegram.wait_for(
            lambda t=turn: all(  # type: ignore[misc]
                shows(telegram, user_id, f"Echo: {name.lower()}-private-{t}")
                and shows(telegram, GROUP, f"Echo: {name}: {name.lower()}-group-{t}")
                for user_id, name in people.items()
            ),
            timeout=30,
        )
    telegram.send_text(GROUP, f"/retry@{BOT}", user_id=BOB, chat_type="supergroup")
    await telegram.wait_for(lambda: len(model.chat_requests()) == 13)

    for request in model.chat_requests():
        seen = prompt_texts(request)
        asker = "alice" if "alice-" in request["messages"][-1]["content"] else "bob"
        other = "bob" if asker == "alice" else "alice"
        assert f"{other}-" not in seen, f"{other}'s history reached {asker}'s prompt: {seen}"
    retried = model.chat_requests()[-1]["messages"]
    assert retried[-1]["content"] == "Bob: bob-group-2", "/retry answers the asker's question"


HOSTILE = [
    "'); DROP TABLE messages;--",
    'Robert"); DELETE FROM users WHERE (1=1 OR "',
    "1' OR '1'='1",
    "%s %(name)s :name ? $1 {0} %%",
    "\\'; SELECT pg_sleep(10);--",
    "_% LIKE wildcards %_",
    "\u202e\u200b' OR 1=1 --\u2066",
    "' UNION SELECT telegram_bot_token FROM settings --",
]


async def test_hostile_strings_are_stored_and_read_back_intact(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    for n, text in enumerate(HOSTILE, 1):  # (Markdown may render `\'` as `'`: count replies)
        telegram.send_text(ALICE, text, first_name=HOSTILE[0], username="x' OR 1=1")
        await telegram.wait_for(lambda n=n: len(texts(telegram, ALICE)) == n)  # type: ignore[misc]
    telegram.send_text(GROUP, f"/setprompt {HOSTILE[1]}", user_id=ADMIN, chat_type="supergroup")
    await telegram.wait_for(lambda: len(texts(telegram, GROUP)) == 1)
    telegram.send_text(
        GROUP,
        f"@{BOT} {HOSTILE[2]}",
        user_id=BOB,
        chat_type="supergroup",
        chat_title=HOSTILE[0],
        first_name="Bob",
    )
    await telegram.wait_for(lambda: shows(telegram, GROUP, f"Echo: Bob: {HOSTILE[2]}"))

    stored = await stored_messages(database_url, ALICE)
    assert [m.content for m in stored[::2]] == HOSTILE
    assert [r["messages"][-1]["content"] for r in model.chat_requests()[: len(HOSTILE)]] == HOSTILE
    assert model.chat_requests()[-1]["messages"][0]["content"] == HOSTILE[1]
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            alice = await session.get(User, ALICE)
            group = await session.get(Chat, GROUP)
    finally:
        await engine.dispose()
    assert alice is not None and (alice.first_name, alice.username) == (HOSTILE[0], "x' OR 1=1")
    assert group is not None and group.title == HOSTILE[0]
    assert await count(database_url, Message) == 2 * len(HOSTILE) + 2
    await ask(telegram, ALICE, "still here")


async def test_the_owner_of_a_forget_button_can_cancel_then_confirm(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, database_url: str
) -> None:
    telegram.send_text(GROUP, f"@{BOT} my data", user_id=ALICE, chat_type="supergroup")
    telegram.send_text(
        GROUP, f"@{BOT} bob's data", user_id=BOB, chat_type="supergroup", first_name="Bob"
    )
    await telegram.wait_for(lambda: len(texts(telegram, GROUP)) == 2)
    button = await forget_button(telegram, ALICE)

    telegram.press_button(GROUP, button, f"forget:{ALICE}:no", user_id=ALICE)
    await telegram.wait_for(lambda: shows(telegram, GROUP, "Cancelled: nothing was deleted."))
    assert len(await stored_messages(database_url, GROUP)) == 4

    telegram.press_button(GROUP, button, f"forget:{ALICE}:yes", user_id=ALICE)
    await telegram.wait_for(
        lambda: any(t.startswith("Done: deleted 2") for t in texts(telegram, GROUP))
    )
    assert [m.content for m in await stored_messages(database_url, GROUP)] == [
        "Bob: bob's data",
        "Echo: Bob: bob's data",
    ], "only Alice's message and the reply to it are gone"


async def test_nul_characters_are_dropped_the_same_way_on_every_database(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    model.enqueue(Reply(text="re\x00ply"))
    telegram.send_text(ALICE, "a\x00b", first_name="Al\x00ice", username="al\x00")
    await telegram.wait_for(lambda: len(texts(telegram, ALICE)) == 1)
    group = {"chat_type": "supergroup", "chat_title": "G\x00roup"}
    telegram.send_text(GROUP, "/setprompt Be\x00 brief.", user_id=ADMIN, **group)
    await telegram.wait_for(lambda: len(texts(telegram, GROUP)) == 1)
    telegram.send_text(GROUP, f"@{BOT} x\x00y", user_id=BOB, first_name="Bob\x00", **group)
    await telegram.wait_for(lambda: len(texts(telegram, GROUP)) == 2)

    assert [m.content for m in await stored_messages(database_url, ALICE)] == ["ab", "reply"]
    assert [m.content for m in await stored_messages(database_url, GROUP)] == [
        "Bob: xy",
        "Echo: Bob: xy",
    ]
    assert model.chat_requests()[-1]["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Bob: xy"},
    ]
    await ask(telegram, ALICE, "next")
    assert model.chat_requests()[-1]["messages"][1:3] == [
        {"role": "user", "content": "ab"},
        {"role": "assistant", "content": "reply"},
    ]


async def test_an_edit_while_the_reply_streams_changes_nothing(
    admin_bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    story = " ".join(f"word{i}" for i in range(60))
    model.enqueue(Reply(text=story, chunk_chars=10, chunk_delay=0.05))
    original = telegram.send_text(ALICE, "question")
    await telegram.wait_for(lambda: len(texts(telegram, ALICE)) == 1)  # the reply is streaming
    telegram.edit_text(ALICE, original["message_id"], "/setglobal model evil-model")
    await telegram.wait_for(lambda: shows(telegram, ALICE, story))
    await ask(telegram, ALICE, "next")

    assert [r["messages"][-1]["content"] for r in model.chat_requests()] == ["question", "next"]
    assert [m.content for m in await stored_messages(database_url, ALICE)] == [
        "question",
        story,
        "next",
        "Echo: next",
    ]
    assert texts(telegram, ALICE) == [story, "Echo: next"]
    await assert_nothing_changed(telegram, model, database_url)
