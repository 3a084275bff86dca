"""Replies are Markdown rendered to Telegram entities, split safely, never lost."""

from __future__ import annotations

from bot.telegram.app import BotRuntime
from bot.telegram.split import utf16_len
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import texts

ALICE = 1001

MARKDOWN = """Here is **bold with *italic inside*** and `inline code`.

```python
def add(a, b):
    return a < b
```

Use the <b> tag, and see [the docs](https://example.com) — not [this](javascript:alert(1))."""


def _types(entities: list[dict[str, object]]) -> set[object]:
    return {e["type"] for e in entities}


async def test_markdown_with_code_blocks_and_nesting_becomes_entities(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(text=MARKDOWN, chunk_chars=7, chunk_delay=0.01))
    telegram.send_text(ALICE, "format something")
    await telegram.wait_for(lambda: "docs" in "".join(texts(telegram, ALICE)), timeout=15)
    await telegram.wait_for(lambda: telegram.bot_messages(ALICE)[0].text.endswith("this."))

    [message] = telegram.bot_messages(ALICE)
    assert "**" not in message.text and "```" not in message.text
    assert "def add(a, b):\n    return a < b" in message.text
    assert "Use the <b> tag" in message.text, "literal HTML in prose is kept"
    assert {"bold", "italic", "code", "pre", "text_link"} <= _types(message.entities)
    [pre] = [e for e in message.entities if e["type"] == "pre"]
    assert pre["language"] == "python"
    links = [e["url"] for e in message.entities if e["type"] == "text_link"]
    assert links == ["https://example.com"], "unsafe links are shown as plain text"
    assert all(call.status == 200 for call in telegram.calls), "Telegram accepted every call"


async def test_an_unclosed_code_fence_mid_stream_is_shown_as_code(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    code = "```js\n" + "".join(f"let x{i} = {i};\n" for i in range(60)) + "```\nDone."
    model.enqueue(Reply(text=code, chunk_chars=40, chunk_delay=0.08))
    telegram.send_text(ALICE, "code please")
    await telegram.wait_for(lambda: "Done." in "".join(texts(telegram, ALICE)), timeout=20)
    sends = telegram.calls_for("sendMessage") + telegram.calls_for("editMessageText")
    mid_stream = [c for c in sends if "Done." not in c.params["text"]]
    assert mid_stream, "some text was shown before the fence closed"
    for call in mid_stream:
        assert "```" not in call.params["text"]
        assert any(e["type"] == "pre" for e in call.params.get("entities") or [])


async def test_a_10000_character_reply_is_split_and_code_blocks_reopen(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    prose = "\n\n".join(f"Paragraph {i}: " + "lorem ipsum " * 40 for i in range(10))
    code = "```sql\n" + "".join(f"SELECT {i} FROM t;\n" for i in range(300)) + "```"
    answer = prose + "\n\n" + code + "\n\nThe end."
    assert len(answer) > 10_000
    model.enqueue(Reply(text=answer, chunk_chars=400))
    async with BotRuntime(make_settings(max_reply_tokens=8000)):
        telegram.send_text(ALICE, "a lot")
        await telegram.wait_for(lambda: "The end." in "".join(texts(telegram, ALICE)), 30)

    messages = telegram.bot_messages(ALICE)
    assert len(messages) >= 3
    assert all(utf16_len(m.text) <= 4096 for m in messages)
    shown = "\n".join(m.text for m in messages)
    for i in range(300):
        assert f"SELECT {i} FROM t;" in shown, "no line of the code block is lost"
    for i in range(10):
        assert f"Paragraph {i}:" in shown
    code_parts = [m for m in messages if "SELECT" in m.text]
    assert len(code_parts) >= 2, "the code block spans messages"
    for m in code_parts:
        pres = [e for e in m.entities if e["type"] == "pre"]
        assert pres and all(p["language"] == "sql" for p in pres), "closed and reopened"


async def test_formatting_refused_by_telegram_falls_back_to_plain_text(
    bot: BotRuntime, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.enqueue(Reply(text="Some **bold** claim."))
    telegram.fail_next(
        "sendMessage",
        status=400,
        description="Bad Request: can't parse entities: unsupported entity at byte offset 5",
    )
    telegram.send_text(ALICE, "hi")
    await telegram.wait_for(lambda: texts(telegram, ALICE) == ["Some **bold** claim."])
    assert telegram.bot_messages(ALICE)[0].entities == []
