"""Odd, hostile and unsupported input: each gets a clear answer (or a documented silence), and the
bot keeps working afterwards."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest

from bot.db.models import Status
from bot.notices import Notice
from bot.telegram.app import BotRuntime
from bot.telegram.handlers import HELP, INTERNAL_ERROR, RESET_DONE, WELCOME
from bot.telegram.split import utf16_len
from bot.wording import render
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from tests.conftest import SettingsFactory
from tests.e2e.chat import ask, shows, stored_messages, texts

ALICE = 1001
GROUP = -100777
BOT = "@memory_test_bot"
ANONYMOUS_ADMIN = 1087968824  # GroupAnonymousBot: the sender of anonymous group admins
CHANNEL_BOT = 136817688  # Channel_Bot: the sender of channel posts forwarded into groups
IN_GROUP: dict[str, Any] = {"user_id": ALICE, "chat_type": "supergroup"}


def asked(model: OpenAIEmulator) -> list[str]:
    """The newest user message of every request the model received."""
    return [request["messages"][-1]["content"] for request in model.chat_requests()]


def assert_telegram_accepted_everything(telegram: BotAPIEmulator, *, but: str = "") -> None:
    """Every call succeeded (but `but`, a method expected to fail)."""
    failed = [
        (c.method, c.status, c.response)
        for c in telegram.calls
        if c.status != 200 and c.method != but
    ]
    assert not failed, f"Telegram refused calls: {failed}"


def assert_no_internal_error(telegram: BotAPIEmulator, chat_id: int) -> None:
    assert INTERNAL_ERROR not in texts(telegram, chat_id)


async def answered(telegram: BotAPIEmulator, chat_id: int, text: str) -> None:
    await telegram.wait_for(lambda: shows(telegram, chat_id, text), timeout=15)


def echoes(telegram: BotAPIEmulator, chat_id: int, text: str) -> bool:
    """Whether a bot message in a group echoes `text` (the model may see it as `Name: text`)."""
    return any(
        t.startswith("Echo: ") and t.endswith(f"{text}".strip()) for t in texts(telegram, chat_id)
    )


async def group_ask(telegram: BotAPIEmulator, text: str, **kwargs: Any) -> None:
    """A group member mentions the bot with `text` and waits for the echo."""
    telegram.send_text(GROUP, f"{BOT} {text}", **{**IN_GROUP, **kwargs})
    await telegram.wait_for(lambda: echoes(telegram, GROUP, text), timeout=15)


# ----------------------------------------------------------------------------- odd text


async def test_whitespace_only_text_gets_the_help_and_never_reaches_the_model(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    telegram.send_text(GROUP, f"  {BOT}  ", **IN_GROUP)  # a bare mention is blank, too
    await answered(telegram, GROUP, HELP)
    blanks = [" ", "   \n\t  ", "\u3000\u00a0 \n"]
    chats = [ALICE + n for n in range(len(blanks))]  # one chat each: no flood limit in the way
    for chat, blank in zip(chats, blanks, strict=True):
        telegram.send_text(chat, blank)
    await asyncio.gather(*(answered(telegram, chat, HELP) for chat in chats))
    await asyncio.gather(*(ask(telegram, chat, "still there?") for chat in chats))
    assert asked(model) == ["still there?"] * len(chats)
    assert_telegram_accepted_everything(telegram)


async def test_a_4096_character_message_reaches_the_model_whole_and_is_answered_in_full(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    text = ("lorem ipsum dolor sit amet " * 200)[:4095] + "Z"
    assert len(text) == 4096
    telegram.send_text(ALICE, text)
    expected = f"Echo: {text}"  # 4,102 characters: one more message is needed
    await telegram.wait_for(
        lambda: "".join(texts(telegram, ALICE)).replace(" ", "") == expected.replace(" ", ""),
        timeout=20,
    )
    assert asked(model) == [text]
    shown = texts(telegram, ALICE)
    assert len(shown) == 2 and all(utf16_len(part) <= 4096 for part in shown)
    await ask(telegram, ALICE, "and a short one")
    assert_telegram_accepted_everything(telegram)


async def test_a_4096_character_message_of_emoji_is_answered_within_telegram_limits(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    text = "😀" * 2048  # 4,096 UTF-16 units: the longest message Telegram delivers
    async with BotRuntime(make_settings(max_reply_tokens=4000)):  # the echo is ~2,000 tokens
        telegram.send_text(ALICE, text)
        await telegram.wait_for(lambda: "".join(texts(telegram, ALICE)) == f"Echo: {text}", 20)
        assert asked(model) == [text]
        assert len(texts(telegram, ALICE)) == 2
        assert all(utf16_len(part) <= 4096 for part in texts(telegram, ALICE))
        await ask(telegram, ALICE, "next")
    assert_telegram_accepted_everything(telegram)


async def echoes_intact(telegram: BotAPIEmulator, model: OpenAIEmulator, sent: list[str]) -> None:
    """Each text, sent in a chat of its own, reaches the model and comes back exactly."""
    chats = [ALICE + n for n in range(len(sent))]
    await asyncio.gather(*(ask(telegram, c, t) for c, t in zip(chats, sent, strict=True)))
    assert sorted(asked(model)) == sorted(sent)
    for chat, text in zip(chats, sent, strict=True):
        assert texts(telegram, chat) == [f"Echo: {text}"]
    await asyncio.gather(*(ask(telegram, chat, "plain follow-up") for chat in chats))
    assert_telegram_accepted_everything(telegram)


async def test_zero_width_and_rtl_characters_come_back_intact(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    sent = [
        "\u200fשלום\u200e and hello\u200d there",
        "zero\u200bwidth\u200cjoin\u2060ers\ufeff",
        "\u202eevil override\u202c \u2066isolate\u2069",
        "مرحبا \u200f(test)\u200f 123",
        "\u200b",
    ]
    await echoes_intact(telegram, model, sent)


async def test_emoji_and_surrogate_pairs_come_back_intact(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    sent = [
        "😀",
        "👨‍👩‍👧‍👦 family, 🏳️‍🌈 flag, 🇺🇦 flag, 👍🏽 tone",
        "𝒜𝒷𝒸 𐍈 🀄 math and gothic",
        "mixed 😀 text 𝒜 with ❤️ and 日本語",
        "**😀**_𝒜_",
    ]
    await echoes_intact(telegram, model, sent[:-1])
    telegram.send_text(ALICE + 10, sent[-1])
    await answered(telegram, ALICE + 10, "Echo: 😀𝒜")
    [reply] = telegram.bot_messages(ALICE + 10)
    assert {e["type"] for e in reply.entities} == {"bold", "italic"}


# ----------------------------------------------------------------------------- injection


INJECTIONS = [  # (what the user writes, what the reply must show)
    ("<b>not bold</b> & <script>alert(1)</script> &amp;", "<b>not bold</b> & <script>"),
    ("```python\nprint('never closed')", "print('never closed')"),
    ("click [x](javascript:alert(1)) now", "click x now"),
    ("**unbalanced *markers _everywhere` [link](", "unbalanced"),
    ("<a href='tg://user?id=1'>me</a> [y](tg://user?id=1)", "me</a>"),
    ("| a | b |\n|---|\n> quote\n# heading\n---", "heading"),
    ("\\*escaped\\* ~~strike~~ ||spoiler|| <tg-spoiler>s</tg-spoiler>", "<tg-spoiler>"),
]


async def test_html_and_markdown_in_the_user_message_reach_the_model_verbatim_and_render_safely(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    chats = [ALICE + n for n in range(len(INJECTIONS))]  # one chat each: no flood limit in the way
    for chat, (text, _) in zip(chats, INJECTIONS, strict=True):
        telegram.send_text(chat, text)
    for chat, (_, visible) in zip(chats, INJECTIONS, strict=True):
        await telegram.wait_for(lambda c=chat, v=visible: v in "".join(texts(telegram, c)), 15)
    await asyncio.gather(*(ask(telegram, chat, "plain follow-up") for chat in chats))

    assert sorted(asked(model)) == sorted(
        [text for text, _ in INJECTIONS] + ["plain follow-up"] * len(chats)
    )
    for chat, (text, visible) in zip(chats, INJECTIONS, strict=True):
        reply = telegram.bot_messages(chat)[0]
        assert reply.text.startswith("Echo:") and visible in reply.text, (text, reply.text)
        for entity in reply.entities:
            if entity["type"] == "text_link":
                assert entity["url"].startswith(("http://", "https://", "tg://")), text
    html_reply = telegram.bot_messages(chats[0])[0]
    assert html_reply.entities == [], "HTML written by the user is shown, never applied"
    assert_telegram_accepted_everything(telegram)


async def test_a_mention_in_another_letter_case_is_stripped_before_the_model_sees_it(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    telegram.send_text(GROUP, "@Memory_Test_Bot what is 2+2?", **IN_GROUP)
    await telegram.wait_for(lambda: echoes(telegram, GROUP, "what is 2+2?"), timeout=15)
    [question] = asked(model)
    assert "memory_test_bot" not in question.lower(), question


# ----------------------------------------------------------------------------- commands


async def test_a_command_for_another_bot_in_a_group_is_ignored_and_ours_is_answered(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    telegram.send_text(GROUP, "/start@OtherBot", **IN_GROUP)
    telegram.send_text(GROUP, "/help@OtherBot please", **IN_GROUP)
    telegram.send_text(GROUP, f"/help{BOT}", **IN_GROUP)
    await answered(telegram, GROUP, HELP)
    await group_ask(telegram, "ping")

    assert len(texts(telegram, GROUP)) == 2, "nothing for the other bot"
    assert texts(telegram, GROUP)[0] == HELP
    [question] = asked(model)
    assert question.endswith("ping")
    assert_telegram_accepted_everything(telegram)


COMMANDS = [
    ("/reset now please", RESET_DONE),
    ("/help " + "x" * 4000, HELP),
    ("/start " + "😀" * 2000, WELCOME),
    ("/HELP", HELP),
    ("/help@memory_test_bot extra words", HELP),
    ("/reset\n\nwith a second paragraph", RESET_DONE),
]


async def test_commands_with_extra_or_huge_arguments_still_do_their_job(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    chats = [ALICE + n for n in range(len(COMMANDS))]  # one chat each: no flood limit in the way
    for chat, (command, _) in zip(chats, COMMANDS, strict=True):
        telegram.send_text(chat, command)
    for chat, (command, answer) in zip(chats, COMMANDS, strict=True):
        await telegram.wait_for(lambda c=chat, a=answer: shows(telegram, c, a), timeout=15)
        assert texts(telegram, chat) == [answer], command[:40]
    await asyncio.gather(*(ask(telegram, chat, "after the command") for chat in chats))
    assert asked(model) == ["after the command"] * len(chats), "commands never reach the model"
    assert_telegram_accepted_everything(telegram)


async def test_an_unknown_command_never_reaches_the_model(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    telegram.send_text(ALICE, "/nonsense with arguments")
    await ask(telegram, ALICE, "after the unknown command")
    assert asked(model) == ["after the unknown command"]
    assert_no_internal_error(telegram, ALICE)


# ----------------------------------------------------------------------------- not text


NO_FILE = render("not_found")  # the emulator gives these file ids Telegram does not know
STICKER = render(Notice("unsupported", {"kind": "sticker"}))


def cannot_read(kind: str) -> str:
    return render(Notice("unsupported", {"kind": kind}))


# Media whose file Telegram cannot give, and kinds the bot cannot read.
NON_TEXT: dict[str, tuple[dict[str, Any], str]] = {
    "sticker": ({"sticker": {"emoji": "😀"}}, cannot_read("sticker")),
    "photo": ({"photo": [{"width": 90, "height": 90}, {}]}, NO_FILE),
    "photo-with-caption": ({"photo": [{}], "caption": "What is in this picture?"}, NO_FILE),
    "voice": ({"voice": {"duration": 3}}, NO_FILE),
    "document": ({"document": {"file_name": "notes.pdf", "mime_type": "application/pdf"}}, NO_FILE),
    "document-with-caption": (
        {"document": {"file_name": "a.txt"}, "caption": "summarise this"},
        NO_FILE,
    ),
    "location": ({"location": {"latitude": 52.52, "longitude": 13.405}}, cannot_read("location")),
    "contact": (
        {"contact": {"phone_number": "+10000000000", "first_name": "Bob"}},
        cannot_read("contact"),
    ),
    "dice": ({"dice": {"emoji": "🎲", "value": 4}}, cannot_read("dice")),
    "video-note": ({"video_note": {}}, NO_FILE),
}


async def test_non_text_messages_the_bot_cannot_read_get_one_line_and_never_reach_the_model(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    chats = dict(zip(NON_TEXT, range(ALICE, ALICE + len(NON_TEXT)), strict=True))
    for kind, (fields, _) in NON_TEXT.items():
        telegram.send_message(chats[kind], **fields)
    for kind, chat in chats.items():
        answer = NON_TEXT[kind][1]
        await telegram.wait_for(lambda c=chat, a=answer: shows(telegram, c, a), timeout=15)
        assert texts(telegram, chat) == [answer], kind
    await asyncio.gather(*(ask(telegram, chat, "a text question") for chat in chats.values()))

    assert asked(model) == ["a text question"] * len(chats), "no media reached the model"
    for kind, chat in chats.items():
        stored = await stored_messages(database_url, chat)
        assert [m.content for m in stored] == ["a text question", "Echo: a text question"], kind
    assert_telegram_accepted_everything(telegram, but="getFile")  # the unknown file ids


async def test_a_photo_captioned_with_a_mention_in_a_group_gets_an_answer(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    caption = f"{BOT} what is in this picture?"
    mention = {"type": "mention", "offset": 0, "length": len(BOT)}
    telegram.send_message(
        GROUP, photo=[{}], caption=caption, caption_entities=[mention], **IN_GROUP
    )
    await group_ask(telegram, "and this is text")
    assert texts(telegram, GROUP)[0] == NO_FILE
    assert len(model.chat_requests()) == 1


async def test_non_text_messages_in_a_group_not_addressed_to_the_bot_are_ignored(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    telegram.send_message(GROUP, sticker={}, **IN_GROUP)
    telegram.send_message(GROUP, photo=[{}], caption="look at this", **IN_GROUP)
    await group_ask(telegram, "hello")
    assert len(texts(telegram, GROUP)) == 1
    [question] = asked(model)
    assert question.endswith("hello")


# ----------------------------------------------------------------------------- other senders


FORWARD_ORIGINS: dict[str, dict[str, Any]] = {
    "user": {
        "type": "user",
        "sender_user": {"id": 5005, "is_bot": False, "first_name": "Carol"},
    },
    "hidden-user": {"type": "hidden_user", "sender_user_name": "Someone Private"},
    "channel": {
        "type": "channel",
        "chat": {"id": -1009999, "type": "channel", "title": "News"},
        "message_id": 77,
    },
}


async def test_a_forwarded_text_message_is_answered_like_text(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    chats = dict(zip(FORWARD_ORIGINS, range(ALICE, ALICE + len(FORWARD_ORIGINS)), strict=True))
    for kind, origin in FORWARD_ORIGINS.items():
        forwarded = f"Forwarded from a {kind}: the meeting moved to 3pm."
        origin = {**origin, "date": 1_700_000_000}
        telegram.send_message(chats[kind], text=forwarded, forward_origin=origin)
    for kind, chat in chats.items():
        await answered(telegram, chat, f"Echo: Forwarded from a {kind}: the meeting moved to 3pm.")
    await asyncio.gather(*(ask(telegram, chat, "what was that about?") for chat in chats.values()))
    assert sorted(asked(model)) == sorted(
        [f"Forwarded from a {kind}: the meeting moved to 3pm." for kind in chats]
        + ["what was that about?"] * len(chats)
    )
    assert_telegram_accepted_everything(telegram)


ANONYMOUS_SENDERS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "anonymous-admin": (
        {
            "id": ANONYMOUS_ADMIN,
            "is_bot": True,
            "first_name": "Group",
            "username": "GroupAnonymousBot",
        },
        {"id": GROUP, "type": "supergroup", "title": "Test group"},
    ),
    "channel": (
        {"id": CHANNEL_BOT, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"},
        {"id": -1004242, "type": "channel", "title": "Linked channel"},
    ),
}


@pytest.mark.parametrize(
    ("sender", "sender_chat"), ANONYMOUS_SENDERS.values(), ids=ANONYMOUS_SENDERS.keys()
)
async def test_a_mention_from_an_anonymous_admin_or_a_channel_does_not_break_the_bot(
    bot: BotRuntime,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    sender: dict[str, Any],
    sender_chat: dict[str, Any],
) -> None:
    fields = {"from": sender, "sender_chat": sender_chat, "text": f"{BOT} who am I?"}
    telegram.send_message(GROUP, chat_type="supergroup", **fields)
    await telegram.wait_for(lambda: echoes(telegram, GROUP, "who am I?"), timeout=15)
    await group_ask(telegram, "and now a person")

    first, second = asked(model)
    assert first.endswith("who am I?") and second.endswith("and now a person")
    assert_no_internal_error(telegram, GROUP)
    assert_telegram_accepted_everything(telegram)


# ----------------------------------------------------------------------------- edits, budget


async def test_an_edited_message_is_ignored_and_never_reaches_the_model(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    original = telegram.send_text(ALICE, "the original question")
    await answered(telegram, ALICE, "Echo: the original question")
    telegram.edit_text(ALICE, original["message_id"], "the edited question")
    await ask(telegram, ALICE, "a new question")

    assert asked(model) == ["the original question", "a new question"]
    assert texts(telegram, ALICE) == ["Echo: the original question", "Echo: a new question"]
    stored = await stored_messages(database_url, ALICE)
    assert "the edited question" not in [m.content for m in stored]
    assert stored[0].content == "the original question"
    assert_no_internal_error(telegram, ALICE)


async def test_a_message_over_the_token_budget_is_refused_clearly_and_stored_as_rejected(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    too_long = "very long " * 400
    async with BotRuntime(make_settings(context_tokens=300, max_reply_tokens=100)):
        telegram.send_text(ALICE, too_long)
        await telegram.wait_for(lambda: any("too long" in t for t in texts(telegram, ALICE)))
        await ask(telegram, ALICE, "short one")

    [refusal, _] = texts(telegram, ALICE)
    assert re.search(r"too long .*\d+ tokens; the limit is \d+", refusal), refusal
    assert asked(model) == ["short one"]
    stored = await stored_messages(database_url, ALICE)
    assert [(m.content, m.status) for m in stored] == [
        (too_long, Status.REJECTED),
        ("short one", Status.COMPLETE),
        ("Echo: short one", Status.COMPLETE),
    ]
    assert_telegram_accepted_everything(telegram)


async def test_a_rejected_message_is_left_out_of_the_next_prompt(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    async with BotRuntime(make_settings(context_tokens=300, max_reply_tokens=100)):
        telegram.send_text(ALICE, "very long " * 400)
        await telegram.wait_for(lambda: any("too long" in t for t in texts(telegram, ALICE)))
        await ask(telegram, ALICE, "first short one")
        await ask(telegram, ALICE, "second short one")
    assert model.chat_requests()[-1]["messages"][1:] == [
        {"role": "user", "content": "first short one"},
        {"role": "assistant", "content": "Echo: first short one"},
        {"role": "user", "content": "second short one"},
    ]


async def test_a_burst_of_bad_input_leaves_the_bot_answering_normally(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    telegram.send_text(ALICE, "   ")
    telegram.send_message(ALICE, sticker={})
    telegram.send_text(ALICE, "/help " + "y" * 3000)
    await telegram.wait_for(lambda: len(texts(telegram, ALICE)) == 3, timeout=15)
    started = time.monotonic()
    await ask(telegram, ALICE, "are you ok?")
    assert time.monotonic() - started < 10
    assert texts(telegram, ALICE) == [HELP, STICKER, HELP, "Echo: are you ok?"]
    assert asked(model) == ["are you ok?"]
