"""bot/media over real HTTP against the emulators: download, images, audio, documents.

The HTTP client is the bot's own (httpx over bot.http_transport's aiohttp transport); the
attachments are read from the updates the Bot API emulator sends, as the handlers will.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from bot.llm.bodies import chat_messages
from bot.llm.tokens import TokenCounter
from bot.llm.types import ChatMessage
from bot.logs import quiet_secret_loggers
from bot.media import (
    Attachment,
    MediaError,
    MediaOptions,
    MediaProcessor,
    ModelTarget,
    TelegramFiles,
    Transcriber,
    attachment_from_message,
)
from bot.media import types as codes
from bot.parts import (
    AudioTranscriptPart,
    DocumentTextPart,
    ImagePart,
    Part,
    TextPart,
    prompt_text,
)
from bot.runtime.http_transport import AiohttpTransport
from emulators import media_samples as samples
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from emulators.openai_audio import Transcript
from emulators.openai_tokens import count_prompt_tokens

CHAT = 7
VISION = ModelTarget.for_model("gpt-4o")
TEXT_ONLY = ModelTarget.for_model("test-model")
COUNTER = TokenCounter("gpt-4o")
MakeMedia = Callable[..., MediaProcessor]


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        timeout=30, transport=AiohttpTransport(max_connections=16)
    ) as client:
        yield client


@pytest.fixture
def make_media(
    http: httpx.AsyncClient, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> MakeMedia:
    """A MediaProcessor wired to both emulators; keyword arguments override MediaOptions."""

    def make(**overrides: Any) -> MediaProcessor:
        values: dict[str, Any] = {
            "transcription_base_url": model.base_url,
            "transcription_api_key": model.api_key,
        }
        values.update(overrides)
        options = MediaOptions(**values)
        root = telegram.base_url.removesuffix("/bot")
        files = TelegramFiles(http, root, telegram.token, max_bytes=options.max_bytes)
        transcriber = Transcriber(
            http,
            base_url=options.transcription_base_url,
            api_key=options.transcription_api_key,
            model=options.transcription_model,
            max_bytes=options.transcription_max_bytes,
        )
        return MediaProcessor(files, transcriber, options)

    return make


def attachment(message: dict[str, Any]) -> Attachment:
    found = attachment_from_message(message)
    assert found is not None
    return found


async def failure(work: Any) -> MediaError:
    with pytest.raises(MediaError) as caught:
        await work
    return caught.value


# --- download ------------------------------------------------------------------------------------


async def test_download_returns_the_largest_photo(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    original = samples.image_bytes(1500, 1000)
    item = attachment(telegram.send_photo(CHAT, original))
    assert await make_media().files.download(item) == original
    assert telegram.files.downloads[-1].startswith("photos/")


async def test_declared_size_over_the_cap_is_refused_without_a_request(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    item = attachment(telegram.send_document(CHAT, b"x" * 5000, file_name="a.bin"))
    error = await failure(make_media(max_bytes=4096).files.download(item))
    assert (error.code, error.values) == (codes.TOO_BIG, {"size": 5000, "limit": 4096})
    assert telegram.calls_for("getFile") == []


async def test_stream_is_cut_at_the_cap_when_the_size_is_unknown(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    """Without file_size nor Content-Length, reading stops at the first chunk past the cap."""
    sent = telegram.send_document(CHAT, b"y" * (2 * 1024 * 1024), file_name="big.log", chunked=True)
    item = Attachment("document", sent["document"]["file_id"], "u", size=None)
    error = await failure(make_media(max_bytes=256 * 1024).files.download(item))
    assert error.code == codes.TOO_BIG
    received = error.values["size"]
    assert isinstance(received, int) and 256 * 1024 < received < 2 * 1024 * 1024


async def test_telegram_refusing_a_big_file_is_too_big(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    sent = telegram.send_document(CHAT, b"z", file_name="huge.iso", size=21 * 1024 * 1024)
    item = Attachment("document", sent["document"]["file_id"], "u", size=None)
    assert (await failure(make_media().files.download(item))).code == codes.TOO_BIG


async def test_unknown_file_is_not_found(make_media: MakeMedia) -> None:
    item = Attachment("document", "gone-file-id", "u")
    assert (await failure(make_media().files.download(item))).code == codes.NOT_FOUND


async def test_token_is_never_in_logs_or_errors(
    make_media: MakeMedia,
    telegram: BotAPIEmulator,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    quiet_secret_loggers()  # what bot.logs does at start-up (httpx logs every URL at INFO)
    caplog.set_level(logging.DEBUG)
    media = make_media(max_bytes=1024)
    ok = attachment(telegram.send_photo(CHAT, samples.image_bytes(100, 100)))
    await media.files.download(ok)
    big = attachment(telegram.send_document(CHAT, b"q" * 4096, file_name="q.txt"))
    errors = [
        await failure(media.files.download(big)),
        await failure(media.files.download(Attachment("document", "nope", "u"))),
    ]
    closed = TelegramFiles(http, "http://127.0.0.1:9", telegram.token, max_bytes=1024)
    errors.append(await failure(closed.download(Attachment("document", "f", "u"))))
    assert [e.code for e in errors] == [codes.TOO_BIG, codes.NOT_FOUND, codes.DOWNLOAD_FAILED]
    secret = telegram.token.split(":", 1)[1]
    for error in errors:
        assert secret not in str(error) and secret not in repr(error)
        assert error.__cause__ is None  # no httpx exception (with its URL) chained
        assert error.__context__ is None or error.__suppress_context__
    assert secret not in repr(media.files)
    assert telegram.token not in caplog.text and secret not in caplog.text


# --- images ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "GIF", "WEBP"])
async def test_image_document_becomes_an_image_part_the_model_accepts(
    make_media: MakeMedia, telegram: BotAPIEmulator, model: OpenAIEmulator, fmt: str
) -> None:
    data = samples.image_bytes(1200, 900, fmt)
    mime = f"image/{fmt.lower()}"
    sent = telegram.send_document(
        CHAT, data, file_name=f"pic.{fmt.lower()}", mime_type=mime, caption="What is this?"
    )
    prepared = await make_media().prepare(attachment(sent), VISION, COUNTER)
    image, caption = prepared.parts
    assert isinstance(image, ImagePart) and caption == TextPart("What is this?", 4)
    assert image.data.startswith(b"\xff\xd8") and image.mime == "image/jpeg"  # re-encoded
    assert (image.width, image.height, image.file is not None) == (1200, 900, True)
    assert prepared.notes == ()
    # The server's usage agrees with the stored cost: text as the cookbook counts, plus image.
    [message] = chat_messages([ChatMessage("user", prepared.parts)])
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{model.base_url}/chat/completions",
            json={"model": "gpt-4o", "messages": [message]},
            headers={"Authorization": f"Bearer {model.api_key}"},
        )
    assert response.status_code == 200, response.text
    text = count_prompt_tokens([{"role": "user", "content": "What is this?"}])
    assert response.json()["usage"]["prompt_tokens"] == text + image.tokens


async def test_text_only_model_gets_the_text_form_and_a_note(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    sent = telegram.send_photo(CHAT, samples.image_bytes(800, 600), caption="Look")
    prepared = await make_media().prepare(attachment(sent), TEXT_ONLY, COUNTER)
    image = prepared.parts[0]
    assert isinstance(image, ImagePart) and image.data  # stored: a vision profile can use it
    assert image.tokens == 85 + 170 * 4  # its cost as an image (the prompt decides per turn)
    assert [n.code for n in prepared.notes] == ["no_vision"]
    assert prompt_text(image) == "[image: photo, 800×600]"


async def test_album_is_one_prepared_message_with_the_caption_last(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    sent = telegram.send_album(
        CHAT, [samples.image_bytes(300 + n, 200) for n in range(3)], caption="Our trip"
    )
    prepared = await make_media().prepare_album([attachment(m) for m in sent], VISION, COUNTER)
    assert [p.kind for p in prepared.parts] == ["image", "image", "image", "text"]
    assert [getattr(p, "width", None) for p in prepared.parts[:3]] == [300, 301, 302]
    assert prepared.parts[-1].text == "Our trip"


async def test_album_keeps_the_good_photos_when_one_is_corrupt(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    good = attachment(telegram.send_photo(CHAT, samples.image_bytes(64, 64)))
    data = samples.image_bytes(640, 480, quality=95)
    bad = attachment(
        telegram.send_document(CHAT, data[:2000], file_name="x.jpg", mime_type="image/jpeg")
    )
    prepared = await make_media().prepare_album([good, bad], VISION, COUNTER)
    assert [p.kind for p in prepared.parts] == ["image"]
    assert [(n.code, dict(n.values)) for n in prepared.notes] == [
        ("skipped", {"code": codes.CORRUPT})
    ]


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (samples.image_bytes(640, 480, quality=95)[:3000], codes.CORRUPT),
        (samples.png_bomb(), codes.BOMB),
        (b"GIF89a-not-really", codes.CORRUPT),
    ],
    ids=["truncated_jpeg", "decompression_bomb", "garbage"],
)
async def test_bad_images_give_a_code(
    make_media: MakeMedia, telegram: BotAPIEmulator, data: bytes, code: str
) -> None:
    sent = telegram.send_document(CHAT, data, file_name="x.png", mime_type="image/png")
    assert (await failure(make_media().prepare(attachment(sent), VISION, COUNTER))).code == code


async def test_heic_photo_sent_as_a_file(make_media: MakeMedia, telegram: BotAPIEmulator) -> None:
    data = samples.image_bytes(400, 300, "HEIF")
    sent = telegram.send_document(CHAT, data, file_name="IMG_1.HEIC", mime_type="image/heic")
    prepared = await make_media().prepare(attachment(sent), VISION, COUNTER)
    image = prepared.parts[0]
    assert isinstance(image, ImagePart) and (image.width, image.height) == (400, 300)
    assert image.mime == "image/jpeg" and image.data.startswith(b"\xff\xd8")


async def test_sticker_is_unsupported(make_media: MakeMedia, telegram: BotAPIEmulator) -> None:
    sent = telegram.send_message(CHAT, sticker={"emoji": "👍"})
    error = await failure(make_media().prepare(attachment(sent), VISION, COUNTER))
    assert (error.code, error.values) == (codes.UNSUPPORTED, {"kind": "sticker"})


# --- audio ----------------------------------------------------------------------------------------


async def test_voice_is_transcribed_as_ogg_and_the_transcript_shown(
    make_media: MakeMedia, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.audio.enqueue("please summarise my day")
    sent = telegram.send_voice(CHAT, samples.ogg_opus(), duration=3)
    prepared = await make_media(transcription_language="en").prepare(
        attachment(sent), VISION, COUNTER
    )
    [part] = prepared.parts
    assert isinstance(part, AudioTranscriptPart) and part.text == "please summarise my day"
    assert (part.mime, part.duration) == ("audio/ogg", 3)
    assert part.tokens == COUNTER.count_text("please summarise my day")
    assert [(n.code, dict(n.values)) for n in prepared.notes] == [
        ("transcript", {"text": "please summarise my day"})
    ]
    [upload] = model.audio.uploads
    assert upload.file_name == "voice.ogg"  # Telegram's .oga renamed for the API
    assert upload.fields["model"] == "whisper-1" and upload.data == samples.ogg_opus()


async def test_video_note_and_audio_file_are_transcribed_with_a_label(
    make_media: MakeMedia, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.audio.enqueue("round video words", "podcast words")
    media = make_media(show_transcript=False)
    note = await media.prepare(
        attachment(telegram.send_video_note(CHAT, samples.mp4_bytes())), VISION, COUNTER
    )
    audio = await media.prepare(
        attachment(telegram.send_audio(CHAT, b"ID3" + b"\x00" * 64, file_name="ep1.mp3")),
        VISION,
        COUNTER,
    )
    assert note.parts[0].text == "round video words" and note.notes == ()
    assert audio.parts[0].text == "[Transcript of ep1.mp3]\npodcast words"
    assert [u.file_name for u in model.audio.uploads] == ["video_note.mp4", "ep1.mp3"]


@pytest.mark.parametrize(
    ("answer", "code", "values"),
    [
        (Transcript(status=500), codes.TRANSCRIPTION_FAILED, {"status": 500}),
        (Transcript(status=503), codes.TRANSCRIPTION_FAILED, {"status": 503}),
        (Transcript(""), codes.EMPTY, {}),
    ],
    ids=["500", "503", "silence"],
)
async def test_transcription_faults_give_a_code(
    make_media: MakeMedia,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    answer: Transcript,
    code: str,
    values: dict[str, Any],
) -> None:
    model.audio.enqueue(answer)
    sent = telegram.send_voice(CHAT, samples.ogg_opus())
    error = await failure(make_media().prepare(attachment(sent), VISION, COUNTER))
    assert (error.code, error.values) == (code, values)


async def test_corrupt_audio_is_unsupported(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    sent = telegram.send_voice(CHAT, b"this is not ogg")
    error = await failure(make_media().prepare(attachment(sent), VISION, COUNTER))
    assert error.code == codes.UNSUPPORTED_AUDIO


async def test_unknown_audio_format_is_refused_before_upload(
    make_media: MakeMedia, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    sent = telegram.send_audio(CHAT, b"\x00" * 64, file_name="tune.xm", mime_type="audio/x-xm")
    error = await failure(make_media().prepare(attachment(sent), VISION, COUNTER))
    assert (error.code, error.values) == (codes.UNSUPPORTED_AUDIO, {"mime": "audio/x-xm"})
    assert model.requests == []


async def test_transcription_not_configured_downloads_nothing(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    sent = telegram.send_voice(CHAT, samples.ogg_opus())
    media = make_media(transcription_base_url="")
    error = await failure(media.prepare(attachment(sent), VISION, COUNTER))
    assert error.code == codes.NOT_CONFIGURED
    assert telegram.calls_for("getFile") == []


async def test_audio_over_25_mb_is_refused_by_the_client_and_by_the_server(
    make_media: MakeMedia, telegram: BotAPIEmulator, http: httpx.AsyncClient, model: OpenAIEmulator
) -> None:
    sent = telegram.send_voice(CHAT, samples.ogg_opus(), size=26 * 1024 * 1024)
    error = await failure(make_media().prepare(attachment(sent), VISION, COUNTER))
    assert error.code == codes.AUDIO_TOO_BIG and telegram.calls_for("getFile") == []
    # A client configured past the API's limit gets the server's 413 as the same code.
    lax = Transcriber(http, base_url=model.base_url, api_key=model.api_key, max_bytes=10**9)
    big = b"OggS" + b"\x00" * (25 * 1024 * 1024)
    error = await failure(lax.transcribe(big, file_name="v.ogg", mime="audio/ogg"))
    assert error.code == codes.AUDIO_TOO_BIG


async def test_transcription_key_is_never_in_errors(
    http: httpx.AsyncClient, model: OpenAIEmulator
) -> None:
    wrong = Transcriber(http, base_url=model.base_url, api_key="sk-secret-wrong-key")
    error = await failure(wrong.transcribe(samples.ogg_opus(), file_name="v.ogg", mime=None))
    assert (error.code, error.values) == (codes.TRANSCRIPTION_FAILED, {"status": 401})
    assert "sk-secret" not in str(error) and "sk-secret" not in repr(wrong)


# --- documents ------------------------------------------------------------------------------------


async def test_pdf_becomes_a_document_part_with_its_name(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    data = samples.pdf_bytes(["Quarterly revenue rose", "Costs fell"])
    sent = telegram.send_document(
        CHAT, data, file_name="report.pdf", mime_type="application/pdf", caption="Summarise"
    )
    prepared = await make_media().prepare(attachment(sent), TEXT_ONLY, COUNTER)
    document, caption = prepared.parts
    assert isinstance(document, DocumentTextPart) and document.name == "report.pdf"
    assert "Quarterly revenue rose" in document.text and "Costs fell" in document.text
    assert prompt_text(document).startswith("[document: report.pdf]\n")
    assert document.tokens == COUNTER.count_text(prompt_text(document))
    assert caption.text == "Summarise" and prepared.notes == ()


async def test_docx_without_caption_asks_what_to_do(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    sent = telegram.send_document(
        CHAT, samples.docx_bytes(["Meeting notes", "Action items"]), file_name="notes.docx"
    )
    prepared = await make_media().prepare(attachment(sent), TEXT_ONLY, COUNTER)
    assert "Meeting notes\nAction items" in prepared.parts[0].text
    assert [n.code for n in prepared.notes] == ["no_caption"]


async def test_source_file_with_an_odd_mime_is_text(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    code = b"def main() -> None:\n    print('hi')\n"
    sent = telegram.send_document(
        CHAT, code, file_name="main.py", mime_type="application/octet-stream", caption="Review"
    )
    prepared = await make_media().prepare(attachment(sent), TEXT_ONLY, COUNTER)
    assert prompt_text(prepared.parts[0]) == "[document: main.py]\n" + code.decode()


async def test_long_document_is_cut_with_a_note(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    text = "\n".join(f"{n}: a line of a long log" for n in range(5000)).encode()
    sent = telegram.send_document(CHAT, text, file_name="app.log", caption="Errors?")
    prepared = await make_media(document_max_tokens=500).prepare(
        attachment(sent), TEXT_ONLY, COUNTER
    )
    document = prepared.parts[0]
    assert document.tokens <= 500 + 30  # the budget, plus the cut note itself
    assert "cut to fit" in document.text
    [note] = prepared.notes
    assert note.code == "truncated" and 0 < int(note.values["percent"] or 0) < 100


@pytest.mark.parametrize(
    ("data", "name", "code"),
    [
        (samples.encrypted_pdf(), "locked.pdf", codes.ENCRYPTED),
        (b"%PDF-1.7\nthis is not really a pdf", "broken.pdf", codes.BROKEN),
        (samples.zip_bomb_docx(8 * 1024 * 1024), "bomb.docx", codes.BOMB),
        (b"\x00\x01\x02\x03binary", "blob.bin", codes.UNSUPPORTED),
    ],
    ids=["encrypted_pdf", "broken_pdf", "zip_bomb", "binary"],
)
async def test_bad_documents_give_a_code(
    make_media: MakeMedia, telegram: BotAPIEmulator, data: bytes, name: str, code: str
) -> None:
    sent = telegram.send_document(CHAT, data, file_name=name)
    media = make_media(zip_max_bytes=1024 * 1024)
    assert (await failure(media.prepare(attachment(sent), VISION, COUNTER))).code == code


async def test_scanned_pdf_is_honest_on_text_models_and_pictures_on_vision(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    data = samples.scanned_pdf(5)
    media = make_media()
    text_only = attachment(telegram.send_document(CHAT, data, file_name="scan.pdf"))
    error = await failure(media.prepare(text_only, TEXT_ONLY, COUNTER))
    assert (error.code, error.values) == (codes.SCANNED, {"pages": 5})
    vision = attachment(telegram.send_document(CHAT, data, file_name="scan.pdf", caption="Read"))
    prepared = await media.prepare(vision, VISION, COUNTER)
    assert [p.kind for p in prepared.parts] == ["image", "image", "image", "text"]
    assert prepared.parts[0].text == "scan.pdf, page 1, 300×400"
    assert [n.code for n in prepared.notes] == ["scanned_as_images"]


class ThreadRecordingCounter:
    """A token counter that notes, on each call, its thread and the loop's tick count."""

    def __init__(self, ticks: list[int]) -> None:
        self.inner = TokenCounter("gpt-4o")
        self.ticks = ticks
        self.seen: list[tuple[int, int]] = []  # (thread id, ticks so far)

    def count_text(self, text: str) -> int:
        self.seen.append((threading.get_ident(), len(self.ticks)))
        return self.inner.count_text(text)

    def count_part(self, part: Part) -> int:
        return self.inner.count_part(part)


async def test_300_page_pdf_is_read_in_a_worker_while_the_loop_keeps_running(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    pages = [f"Page {n}: " + "lorem ipsum dolor sit amet " * 30 for n in range(1, 301)]
    sent = telegram.send_document(CHAT, samples.pdf_bytes(pages), file_name="book.pdf")
    ticks: list[int] = []
    counter = ThreadRecordingCounter(ticks)
    media = make_media(document_max_tokens=1_000_000)
    task = asyncio.create_task(media.prepare(attachment(sent), TEXT_ONLY, counter))
    while not task.done():
        ticks.append(len(ticks))
        await asyncio.sleep(0)
    prepared = task.result()
    assert "Page 300:" in prepared.parts[0].text and prepared.notes[-1].code == "no_caption"
    loop_thread = threading.get_ident()
    worker = [tick for thread, tick in counter.seen if thread != loop_thread]
    assert len(worker) >= 300  # every page was counted in the worker thread
    assert worker[-1] > worker[0]  # and the loop ran the ticker in between


async def test_image_sent_as_a_generic_file_is_still_an_image(
    make_media: MakeMedia, telegram: BotAPIEmulator
) -> None:
    data = samples.image_bytes(200, 100, "PNG")
    sent = telegram.send_document(
        CHAT, data, file_name="scan", mime_type="application/octet-stream", caption="Text?"
    )
    prepared = await make_media().prepare(attachment(sent), VISION, COUNTER)
    assert [p.kind for p in prepared.parts] == ["image", "text"]
    assert prepared.parts[0].text == "scan, 200×100"


async def test_a_profile_can_bring_its_own_transcriber(
    make_media: MakeMedia, telegram: BotAPIEmulator, http: httpx.AsyncClient, model: OpenAIEmulator
) -> None:
    model.audio.enqueue("from the profile's server")
    media = make_media(transcription_base_url="")  # no default transcription server
    own = Transcriber(
        http, base_url=model.base_url, api_key=model.api_key, model="gpt-4o-mini-transcribe"
    )
    sent = telegram.send_voice(CHAT, samples.ogg_opus())
    prepared = await media.prepare(attachment(sent), VISION, COUNTER, transcriber=own)
    assert prepared.parts[0].text == "from the profile's server"
    assert model.audio.uploads[0].fields["model"] == "gpt-4o-mini-transcribe"
