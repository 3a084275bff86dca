"""Every attachment the bot cannot use gets one line in the chat, and the conversation goes on
untouched: nothing is stored for it and the next question's prompt does not carry it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from bot.telegram.app import BotRuntime
from emulators import media_samples as samples
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from emulators.openai_audio import Transcript
from tests.conftest import SettingsFactory
from tests.e2e.chat import shows, stored_messages, texts

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

CHAT = 502
Send = Callable[[BotAPIEmulator, OpenAIEmulator], Any]
JPEG = samples.image_bytes(640, 480, quality=95)


def document(data: bytes, name: str, mime: str | None = None, **fields: Any) -> Send:
    return lambda t, m: t.send_document(CHAT, data, file_name=name, mime_type=mime, **fields)


def slow_pdf(telegram: BotAPIEmulator, model: OpenAIEmulator) -> None:
    """300 long pages, 88k tokens of them to read: over half a second's work for pypdf, far
    more than the MEDIA_PARSE_TIMEOUT below."""
    pages = [f"Page {n}: " + "lorem ipsum dolor sit amet " * 1000 for n in range(1, 301)]
    data = samples.pdf_bytes(pages)
    telegram.send_document(CHAT, data, file_name="book.pdf", mime_type="application/pdf")


def failing_voice(answer: Transcript) -> Send:
    def send(telegram: BotAPIEmulator, model: OpenAIEmulator) -> None:
        model.audio.enqueue(answer)
        telegram.send_voice(CHAT, samples.ogg_opus())

    return send


CASES: list[tuple[str, Send, str, dict[str, Any]]] = [
    (
        "truncated_image_file",  # (Telegram re-encodes photos: a broken one comes as a file)
        document(JPEG[:3000], "cut.jpg", "image/jpeg", caption="What?"),
        "I couldn't read that image: the file looks damaged or incomplete.",
        {},
    ),
    (
        "decompression_bomb",
        document(samples.png_bomb(), "huge.png", "image/png", caption="What?"),
        "That file unpacks to far more than its size, so I won't open it.",
        {},
    ),
    (
        "encrypted_pdf",
        document(samples.encrypted_pdf(), "locked.pdf", "application/pdf", caption="Sum up"),
        "That PDF is password-protected, so I can't read it. Please send it unlocked.",
        {},
    ),
    (
        "broken_pdf",
        document(b"%PDF-1.7\nthis is not really a pdf", "broken.pdf", "application/pdf"),
        "I couldn't open that document: the file looks damaged.",
        {},
    ),
    (
        "pdf_parsing_past_the_timeout",  # its worker process is stopped, the bot goes on
        slow_pdf,
        "That document took too long to read (over 0.1 s), so I stopped. "
        "Please send a smaller file or the part you need.",
        {"media_parse_timeout": 0.1, "document_max_tokens": 88_000, "context_tokens": 200_000},
    ),
    (
        "scanned_pdf_on_a_text_model",
        document(samples.scanned_pdf(4), "scan.pdf", "application/pdf", caption="Read"),
        "That PDF has no text layer (it is a scan of 4 pages) and this model can't see images, "
        "so I can't read it.",
        {"model": "test-model"},
    ),
    (
        "binary_file",
        document(b"\x00\x01\x02\x03binary", "blob.bin", "application/octet-stream"),
        "I can't read this kind of file (application/octet-stream). "
        "I read photos, text files, PDF and DOCX.",
        {},
    ),
    (
        "over_the_bot_cap",
        document(b"x" * 5000, "notes.txt", "text/plain", caption="Read"),
        "That file is too big for me: I can take files up to 4 KB.",
        {"media_max_bytes": 4096},
    ),
    (
        "over_telegram_20_mb",
        document(b"z", "huge.iso", size=21 * 1024 * 1024),
        "That file is too big for me: I can take files up to 20 MB.",
        {},
    ),
    (
        "sticker",
        lambda t, m: t.send_message(
            CHAT, sticker={"emoji": "👍", "file_id": "s", "type": "regular"}
        ),
        "I can't read sticker messages. Send me text, a photo, a voice message or a document.",
        {},
    ),
    (
        "location",
        lambda t, m: t.send_message(CHAT, location={"latitude": 1.5, "longitude": 2.5}),
        "I can't read location messages. Send me text, a photo, a voice message or a document.",
        {},
    ),
    (
        "poll",
        lambda t, m: t.send_message(
            CHAT,
            poll={
                "id": "1",
                "question": "Tea?",
                "options": [
                    {"persistent_id": "a", "text": "yes", "voter_count": 0},
                    {"persistent_id": "b", "text": "no", "voter_count": 0},
                ],
                "total_voter_count": 0,
                "is_closed": False,
                "is_anonymous": True,
                "type": "regular",
                "allows_multiple_answers": False,
                "allows_revoting": False,
                "members_only": False,
            },
        ),
        "I can't read poll messages. Send me text, a photo, a voice message or a document.",
        {},
    ),
    (
        "transcription_server_fails",
        failing_voice(Transcript(status=500)),
        "The transcription server failed, so I couldn't understand that recording. "
        "Please try again or send text.",
        {},
    ),
    (
        "transcription_not_configured",
        lambda t, m: t.send_voice(CHAT, samples.ogg_opus()),
        "I can't listen to recordings here: no transcription server is configured. "
        "Please send text.",
        {"transcription_base_url": "off"},
    ),
    (
        "silent_recording",
        failing_voice(Transcript("")),
        "I couldn't hear any words in that recording.",
        {},
    ),
    (
        "recording_over_25_mb",
        lambda t, m: t.send_voice(CHAT, samples.ogg_opus(), size=26 * 1024 * 1024),
        "That recording is too big to transcribe (the limit is 25 MB). Please send a shorter one.",
        {},
    ),
]


@pytest.mark.parametrize(
    ("send", "answer", "overrides"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_bad_attachment_gets_one_line_and_loses_nothing(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
    send: Send,
    answer: str,
    overrides: dict[str, Any],
) -> None:
    async with BotRuntime(make_settings(**{"model": "gpt-4o", **overrides})):
        telegram.send_text(CHAT, "First question")
        await telegram.wait_for(lambda: shows(telegram, CHAT, "Echo: First question"), 15)
        send(telegram, model)
        await telegram.wait_for(lambda: len(texts(telegram, CHAT)) == 2, timeout=15)
        telegram.send_text(CHAT, "Still there?")
        await telegram.wait_for(lambda: shows(telegram, CHAT, "Echo: Still there?"), 15)
    assert texts(telegram, CHAT) == ["Echo: First question", answer, "Echo: Still there?"]
    stored = await stored_messages(database_url, CHAT)
    assert [m.content for m in stored] == [
        "First question",
        "Echo: First question",
        "Still there?",
        "Echo: Still there?",
    ]
    last = model.chat_requests()[-1]["messages"]
    assert [m["content"] for m in last[1:]] == [
        "First question",
        "Echo: First question",
        "Still there?",
    ]
