"""Big documents: a 300-page PDF is summarised within the budget, and while one is parsed
other chats' replies keep being shown (the parsing runs off the event loop)."""

from __future__ import annotations

import asyncio

import pytest

from bot.llm.tokens import TokenCounter
from bot.telegram.app import BotRuntime
from emulators import media_samples as samples
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from emulators.openai_replies import Reply
from tests.conftest import SettingsFactory
from tests.e2e.chat import shows, texts

STREAMING, READING = 601, 602
PAGES = [f"Page {n}: " + "lorem ipsum dolor sit amet " * 60 for n in range(1, 301)]


@pytest.fixture(scope="module")
def book() -> bytes:
    return samples.pdf_bytes(PAGES)


async def test_300_page_pdf_is_summarised_within_the_budget(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator, book: bytes
) -> None:
    model.enqueue("A summary.")
    async with BotRuntime(make_settings(model="gpt-4o")):
        telegram.send_document(
            READING, book, file_name="book.pdf", mime_type="application/pdf", caption="Summarise"
        )
        await telegram.wait_for(lambda: shows(telegram, READING, "A summary."), 15)
    note = texts(telegram, READING)[0]
    assert note.startswith("(The document is longer than I can read at once: I kept about")
    [body] = model.chat_requests()
    document, question = body["messages"][-1]["content"].rsplit("\n\n", 1)
    assert document.startswith("[document: book.pdf]\n[page 1]\nPage 1: lorem")
    assert "[… cut to fit: about" in document and "Page 300:" not in document
    assert question == "Summarise"
    assert TokenCounter("gpt-4o").count_text(document) <= 8000 + 50  # DOCUMENT_MAX_TOKENS


async def test_another_chat_is_answered_while_a_pdf_is_parsed(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator, book: bytes
) -> None:
    """Chat STREAMING's reply is released once READING's PDF is downloaded: it must be shown
    before the PDF is read (the note above READING's answer, that its end was cut, is sent
    right after reading). A parser on the event loop would hold STREAMING until the end."""
    released = asyncio.Event()
    model.enqueue(Reply("One moment, here it comes.", hold=released), "A summary.")
    # Nearly the whole book is read (~93k tokens: its last pages are cut), so reading takes
    # a while.
    settings = make_settings(
        model="gpt-4o", context_tokens=200_000, document_max_tokens=88_000, max_reply_tokens=512
    )
    async with BotRuntime(settings):
        telegram.send_text(STREAMING, "Tell me something")
        await model.wait_for_requests(1)
        telegram.send_document(
            READING, book, file_name="book.pdf", mime_type="application/pdf", caption="Sum up"
        )
        while not telegram.files.downloads:  # noqa: ASYNC110 - polled, the emulator has no event
            await asyncio.sleep(0.005)
        released.set()
        await telegram.wait_for(lambda: shows(telegram, READING, "A summary."), 30)
        await telegram.wait_for(lambda: bool(telegram.bot_messages(STREAMING)), 15)
    sent = [c for c in telegram.calls_for("sendMessage") if c.status == 200]
    chats = [c.params["chat_id"] for c in sent]
    assert chats[:2] == [STREAMING, READING], chats  # STREAMING shown while the PDF was read
    [_, reading] = model.chat_requests()
    assert "Page 280:" in reading["messages"][-1]["content"]
    assert texts(telegram, READING)[0].startswith("(The document is longer than I can read")
