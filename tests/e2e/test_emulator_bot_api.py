"""End-to-end checks of the Telegram Bot API emulator over real HTTP (PTB and raw httpx)."""

from __future__ import annotations

import asyncio
import json
import time
import warnings
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import telegram
from telegram import MessageEntity, Update
from telegram.error import BadRequest, NetworkError, RetryAfter
from telegram.ext import ApplicationBuilder, ContextTypes, MessageHandler, filters

from emulators.bot_api import BotAPIEmulator

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

CHAT = 42
GROUP = -100500


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    """An emulator without flood limits, with one known private chat."""
    async with BotAPIEmulator(rate_limits=False) as emulator:
        emulator.send_text(CHAT, "hello")
        yield emulator


@pytest.fixture
async def bot(emu: BotAPIEmulator) -> AsyncIterator[telegram.Bot]:
    """A real PTB bot pointed at the emulator."""
    async with telegram.Bot(emu.token, base_url=emu.base_url) as ptb_bot:
        yield ptb_bot


async def call(
    emu: BotAPIEmulator,
    method: str,
    *,
    as_json: bool = False,
    token: str | None = None,
    **params: Any,
) -> tuple[int, dict[str, Any]]:
    """POST ``method`` like PTB does (form-encoded, JSON-encoded complex values) or as JSON."""
    url = f"{emu.base_url}{token or emu.token}/{method}"
    async with httpx.AsyncClient(timeout=10) as client:
        if as_json:
            response = await client.post(url, json=params)
        else:
            form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
            response = await client.post(url, data=form)
    return response.status_code, response.json()


def seconds(error: RetryAfter) -> float:
    """``RetryAfter.retry_after`` in seconds, whichever type PTB returns."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = error.retry_after
    return value.total_seconds() if isinstance(value, timedelta) else float(value)


# ----------------------------------------------------------------------------- PTB round trips


async def test_get_me(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (emu.bot_id, "memory_test_bot", True)
    assert me.can_join_groups and not me.can_read_all_group_messages


async def test_send_message_with_entities(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    entity = MessageEntity(MessageEntity.BOLD, offset=3, length=2)
    sent = await bot.send_message(CHAT, "😀 hi there", entities=[entity])
    assert sent.text == "😀 hi there" and sent.from_user is not None and sent.from_user.is_bot
    assert sent.entities == (entity,)
    assert sent.message_id == 2  # shares the counter with the user's message
    [stored] = emu.bot_messages(CHAT)
    assert stored.entities == [{"type": "bold", "offset": 3, "length": 2}]
    params = emu.calls_for("sendMessage")[0].params
    assert params["chat_id"] == CHAT and params["entities"][0]["type"] == "bold"


async def test_edit_returns_edited_message(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    sent = await bot.send_message(CHAT, "draft")
    edited = await bot.edit_message_text("final", chat_id=CHAT, message_id=sent.message_id)
    assert isinstance(edited, telegram.Message)
    assert edited.text == "final" and edited.edit_date is not None
    [stored] = emu.bot_messages(CHAT)
    assert stored.text == "final" and stored.edits == ["draft", "final"]


async def test_edit_not_modified_and_not_found(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    sent = await bot.send_message(CHAT, "same")
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("same", chat_id=CHAT, message_id=sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=999)
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):  # the user's message
        await bot.edit_message_text("x", chat_id=CHAT, message_id=1)
    assert await bot.delete_message(CHAT, sent.message_id)
    assert emu.bot_messages(CHAT)[0].deleted
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_text("x", chat_id=CHAT, message_id=sent.message_id)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(CHAT, sent.message_id)


async def test_too_long_counts_utf16(bot: telegram.Bot) -> None:
    await bot.send_message(CHAT, "😀" * 2048)  # 4096 UTF-16 units
    with pytest.raises(BadRequest, match=r"(?i)message is too long"):
        await bot.send_message(CHAT, "😀" * 2049)  # 4098 units, 2049 code points
    with pytest.raises(BadRequest, match=r"(?i)message text is empty"):
        await bot.send_message(CHAT, "   ")
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(777, "who?")


async def test_parse_modes(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    html = await bot.send_message(
        CHAT, "<b>bold</b> &lt;3 <a href='https://e.org'>x</a>", parse_mode="HTML"
    )
    assert html.text == "bold <3 x"
    assert [(e.type, e.offset, e.length) for e in html.entities] == [
        ("bold", 0, 4),
        ("text_link", 8, 1),
    ]
    md = await bot.send_message(CHAT, r"*hi* _there_ 1\.5 `a.b`", parse_mode="MarkdownV2")
    assert md.text == "hi there 1.5 a.b"
    assert [e.type for e in md.entities] == ["bold", "italic", "code"]
    for text, mode, reason in [
        ("<x>hi</x>", "HTML", 'unsupported start tag "x"'),
        ("<b>hi", "HTML", 'can\'t find end tag corresponding to start tag "b"'),
        ("hi.", "MarkdownV2", "character '.' is reserved"),
        ("*hi", "MarkdownV2", "can't find end of the entity starting at byte offset 0"),
    ]:
        with pytest.raises(BadRequest) as info:
            await bot.send_message(CHAT, text, parse_mode=mode)
        assert "can't parse entities" in info.value.message.lower()
        assert reason in info.value.message.lower()


async def test_retry_after_from_scripted_fault(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    emu.fail_next(
        "sendMessage",
        status=429,
        description="Too Many Requests: retry after 7",
        retry_after=7,
        chat_id=CHAT,
    )
    with pytest.raises(RetryAfter) as info:
        await bot.send_message(CHAT, "x")
    assert seconds(info.value) == 7
    assert (await bot.send_message(CHAT, "x")).text == "x"  # consumed
    emu.fail_next("sendMessage", status=500, description="Internal Server Error", chat_id=7)
    emu.fail_next("editMessageText", status=400, description="Bad Request: boom", count=2)
    assert (await bot.send_message(CHAT, "other chat unaffected")).message_id > 0
    for _ in range(2):
        with pytest.raises(BadRequest, match="Boom"):
            await bot.edit_message_text("y", chat_id=CHAT, message_id=2)
    edited = await bot.edit_message_text("y", chat_id=CHAT, message_id=3)
    assert isinstance(edited, telegram.Message) and edited.text == "y"
    assert [c.status for c in emu.calls_for("sendMessage")] == [429, 200, 200]


async def test_drop_next_is_network_error(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    emu.drop_next("sendMessage")
    with pytest.raises(NetworkError):
        await bot.send_message(CHAT, "lost")
    assert emu.bot_messages(CHAT) == []
    assert (await bot.send_message(CHAT, "ok")).text == "ok"


async def test_long_poll_wakes_on_injected_update(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    first = await bot.get_updates(timeout=0)
    assert [u.message.text for u in first if u.message] == ["hello"]
    offset = first[-1].update_id + 1
    started = time.monotonic()
    poll = asyncio.create_task(bot.get_updates(offset=offset, timeout=5))
    await asyncio.sleep(0.1)
    emu.send_text(CHAT, "later")
    updates = await poll
    assert time.monotonic() - started < 2
    assert [u.message.text for u in updates if u.message] == ["later"]
    assert emu.pending_updates() == 1  # not yet confirmed
    assert await bot.get_updates(offset=updates[-1].update_id + 1, timeout=1) == ()
    assert emu.pending_updates() == 0


async def test_redeliver_and_wait_for(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    [update] = await bot.get_updates()
    await bot.get_updates(offset=update.update_id + 1)
    emu.redeliver(update.update_id)
    again = await bot.get_updates(offset=update.update_id + 1)
    assert [u.update_id for u in again] == [update.update_id]
    await bot.get_updates(offset=update.update_id + 1)
    assert emu.pending_updates() == 0
    with pytest.raises(AssertionError, match="condition not met"):
        await emu.wait_for(lambda: len(emu.bot_messages(CHAT)) > 0, timeout=0.2)
    asyncio.get_running_loop().call_later(0.05, emu.send_text, CHAT, "x")
    await emu.wait_for(lambda: emu.pending_updates() == 1, timeout=2)


# ----------------------------------------------------------------------------- raw HTTP


async def test_http_basics(emu: BotAPIEmulator) -> None:
    assert await call(emu, "getMe", token="1:wrong") == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )
    status, body = await call(emu, "fooBar")
    assert (status, body["description"]) == (404, "Not Found")
    status, body = await call(emu, "GETME")
    assert status == 200 and body["result"]["id"] == emu.bot_id
    status, body = await call(emu, "sendMessage", as_json=True, chat_id=CHAT, text="json")
    assert status == 200 and body["result"]["text"] == "json"
    status, body = await call(
        emu,
        "sendMessage",
        chat_id=str(CHAT),
        text="ab",
        entities=[{"type": "nope", "offset": 0, "length": 1}],
    )
    assert status == 400
    assert body["description"].startswith("Bad Request: can't parse entities: ")
    status, body = await call(
        emu, "sendMessage", chat_id=str(CHAT), text="x.", parse_mode="MarkdownV2"
    )
    assert body["description"] == (
        "Bad Request: can't parse entities: Character '.' is reserved and must be escaped with "
        "the preceding '\\'"
    )


async def test_reply_markup_and_callback(emu: BotAPIEmulator) -> None:
    markup = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    _, body = await call(
        emu,
        "sendMessage",
        chat_id=str(CHAT),
        text="pick",
        reply_markup=markup,
        reply_parameters={"message_id": 1},
    )
    message = body["result"]
    assert message["reply_markup"] == markup and message["reply_to_message"]["text"] == "hello"
    query = emu.press_button(CHAT, message["message_id"], "go")
    assert query["message"]["text"] == "pick"
    assert (await call(emu, "answerCallbackQuery", callback_query_id=query["id"]))[0] == 200
    assert (await call(emu, "answerCallbackQuery", callback_query_id=query["id"]))[0] == 400


async def test_group_flood_limit() -> None:
    async with BotAPIEmulator(group_burst=5, group_rate=20 / 60) as emu:
        emu.send_text(GROUP, "hi all", chat_type="group", user_id=7)
        for n in range(5):
            assert (await call(emu, "sendMessage", chat_id=str(GROUP), text=f"m{n}"))[0] == 200
        status, body = await call(emu, "sendMessage", chat_id=str(GROUP), text="too many")
        assert status == 429
        retry = body["parameters"]["retry_after"]
        assert 1 <= retry <= 3, "a token comes back every 3 s (sooner if the calls were slow)"
        assert body == {
            "ok": False,
            "error_code": 429,
            "description": f"Too Many Requests: retry after {retry}",
            "parameters": {"retry_after": retry},
        }
        assert len(emu.bot_messages(GROUP)) == 5


async def test_private_limit_refills_and_ptb_sees_retry_after() -> None:
    async with BotAPIEmulator(private_burst=1, private_rate=4.0) as emu:
        emu.send_text(CHAT, "hi")
        async with telegram.Bot(emu.token, base_url=emu.base_url) as bot:
            await bot.send_message(CHAT, "one")
            with pytest.raises(RetryAfter) as info:
                await bot.send_message(CHAT, "two")
            assert seconds(info.value) == 1
            await asyncio.sleep(0.3)
            assert (await bot.send_message(CHAT, "two")).text == "two"


async def test_drafts(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    emu.send_text(GROUP, "hi", chat_type="supergroup")
    with pytest.raises(BadRequest, match=r"(?i)only in private chats"):
        await bot.send_message_draft(GROUP, 1, "x")
    status, body = await call(emu, "sendMessageDraft", chat_id=str(CHAT), draft_id="0", text="x")
    assert (status, body["description"]) == (400, "Bad Request: draft_id must be non-zero")
    assert await bot.send_message_draft(CHAT, 5, "partial")
    assert [(d["draft_id"], d["text"]) for d in emu.drafts(CHAT)] == [(5, "partial")]


async def test_webhook_conflict_and_commands(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    assert await bot.set_webhook("https://example.org/hook", secret_token="s")
    assert (await bot.get_webhook_info()).url == "https://example.org/hook"
    status, body = await call(emu, "getUpdates")
    assert status == 409 and body["description"].startswith("Conflict: can't use getUpdates")
    assert await bot.delete_webhook()
    await bot.set_my_commands([("start", "Start"), ("reset", "Forget")])
    assert [c.command for c in await bot.get_my_commands()] == ["start", "reset"]
    await bot.delete_my_commands()
    assert await bot.get_my_commands() == ()


async def test_user_side_messages(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    sent = await bot.send_message(CHAT, "bot says")
    msg = emu.send_text(
        GROUP,
        "/ask@memory_test_bot 😀 @bob",
        chat_type="group",
        user_id=9,
        reply_to_message_id=None,
    )
    assert msg["chat"] == {"id": GROUP, "type": "group", "title": "Test group"}
    assert msg["entities"] == [
        {"type": "bot_command", "offset": 0, "length": 20},
        {"type": "mention", "offset": 24, "length": 4},
    ]
    reply = emu.send_text(CHAT, "yes", reply_to_message_id=sent.message_id)
    assert reply["reply_to_message"]["from"]["is_bot"] is True
    sticker = emu.send_message(CHAT, sticker={"file_id": "s", "emoji": "👍"})
    assert sticker["message_id"] == reply["message_id"] + 1 and "text" not in sticker
    edited = emu.edit_text(CHAT, reply["message_id"], "no")
    updates = await bot.get_updates()
    assert updates[-1].edited_message is not None and updates[-1].edited_message.text == "no"
    assert edited["edit_date"] >= edited["date"]


async def test_send_document_keeps_bytes(emu: BotAPIEmulator, bot: telegram.Bot) -> None:
    sent = await bot.send_document(CHAT, b"payload", filename="notes.txt", caption="file")
    assert sent.document is not None and sent.document.file_name == "notes.txt"
    [stored] = emu.bot_messages(CHAT)
    assert (stored.document, stored.file_name, stored.text) == (b"payload", "notes.txt", "file")


async def test_stop_releases_long_poll() -> None:
    emu = BotAPIEmulator()
    await emu.start()
    poll = asyncio.create_task(call(emu, "getUpdates", timeout="30"))
    await emu.wait_for(lambda: emu.state.active_polls == 1, timeout=2)
    started = time.monotonic()
    await emu.stop()
    status, body = await poll
    assert (status, body["result"]) == (200, [])
    assert time.monotonic() - started < 2


async def test_ptb_application_polls_and_replies() -> None:
    async with BotAPIEmulator() as emu:
        app = ApplicationBuilder().token(emu.token).base_url(emu.base_url).build()

        async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
            assert update.effective_message is not None
            await update.effective_message.reply_text(
                f"echo: {update.effective_message.text}", do_quote=True
            )

        app.add_handler(MessageHandler(filters.TEXT, echo))
        async with app:
            await app.start()
            assert app.updater is not None
            await app.updater.start_polling(poll_interval=0, timeout=1)
            emu.send_text(CHAT, "ping")
            await emu.wait_for(lambda: len(emu.bot_messages(CHAT)) == 1, timeout=5)
            await app.updater.stop()
            await app.stop()
        [reply] = emu.bot_messages(CHAT)
        assert (reply.text, reply.reply_to_message_id) == ("echo: ping", 1)
        assert emu.pending_updates() == 0  # PTB confirms the offset when it stops polling
