"""Attachments as conversation turns: the real bot against both emulators, on the configured
database (SQLite, or PostgreSQL with DATABASE_URL): photos, albums, voice, documents, restarts."""

from __future__ import annotations

import base64
import io
import json
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import func, select

from bot.config import Settings
from bot.db.engine import create_engine, create_sessionmaker
from bot.db.models import MessageContent
from bot.telegram.app import BotRuntime
from emulators import media_samples as samples
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from tests.conftest import SettingsFactory
from tests.e2e.chat import shows, stored_messages, texts

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

CHAT = 501
VISION_MODEL = "gpt-4o"  # gpt-4o-mini counts an image at ~33×: it would not fit 16k tokens


def image_parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The image_url items of a chat/completions body, in order."""
    return [
        item
        for message in body["messages"]
        if isinstance(message["content"], list)
        for item in message["content"]
        if item["type"] == "image_url"
    ]


def decoded(url: str) -> Image.Image:
    head, _, data = url.partition(",")
    assert head == "data:image/jpeg;base64"
    return Image.open(io.BytesIO(base64.b64decode(data)))


async def answered(telegram: BotAPIEmulator, chat: int, text: str) -> None:
    await telegram.wait_for(lambda: shows(telegram, chat, text), timeout=15)


async def test_screenshot_question_sends_the_image_and_survives_a_restart(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    settings: Settings = make_settings(model=VISION_MODEL)
    screenshot = samples.image_bytes(3000, 1500, "PNG")
    async with BotRuntime(settings):
        telegram.send_photo(CHAT, screenshot, caption="What does this error say?")
        await answered(telegram, CHAT, "Echo: What does this error say?")
    [body] = model.chat_requests()
    user = body["messages"][-1]
    assert user["role"] == "user"
    [image, question] = user["content"]
    assert question == {"type": "text", "text": "What does this error say?"}
    assert image["image_url"]["detail"] == "auto"
    assert decoded(image["image_url"]["url"]).size == (2048, 1024)  # long side ≤ 2048
    assert telegram.token not in str(body) and "/file/bot" not in str(body)
    stored = await stored_messages(database_url, CHAT)
    assert [m.has_parts for m in stored] == [True, False]
    # After a restart the history is rebuilt from the database: the same image, not Telegram.
    downloads = len(telegram.files.downloads)
    async with BotRuntime(settings):
        telegram.send_text(CHAT, "And how do I fix it?")
        await answered(telegram, CHAT, "Echo: And how do I fix it?")
    later = model.chat_requests()[-1]
    assert image_parts(later) == [image]
    assert len(telegram.files.downloads) == downloads


async def test_album_is_one_turn(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    async with BotRuntime(make_settings(model=VISION_MODEL)):
        images = [samples.image_bytes(400 + n, 300) for n in range(3)]
        telegram.send_album(CHAT, images, caption="Which one is best?")
        await answered(telegram, CHAT, "Echo: Which one is best?")
        telegram.send_text(CHAT, "Thanks")
        await answered(telegram, CHAT, "Echo: Thanks")
    first, second = model.chat_requests()
    sizes = [decoded(item["image_url"]["url"]).size for item in image_parts(first)]
    assert sizes == [(400, 300), (401, 300), (402, 300)]
    assert texts(telegram, CHAT) == ["Echo: Which one is best?", "Echo: Thanks"]
    assert len(image_parts(second)) == 3  # one stored message holds the album


async def test_text_only_model_gets_the_caption_and_the_user_a_note(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    async with BotRuntime(make_settings(model="test-model")):
        telegram.send_photo(CHAT, samples.image_bytes(800, 600), caption="Nice?")
        await answered(telegram, CHAT, "Echo: [image: photo, 800×600]\n\nNice?")
    [body] = model.chat_requests()
    assert body["messages"][-1]["content"] == "[image: photo, 800×600]\n\nNice?"
    note = texts(telegram, CHAT)[0]
    assert note.startswith("(This model can't see images")


async def test_voice_note_is_transcribed_quoted_and_answered(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    model.audio.enqueue("remind me to buy milk")
    async with BotRuntime(make_settings()):
        telegram.send_voice(CHAT, samples.ogg_opus(), duration=2)
        await answered(telegram, CHAT, "Echo: remind me to buy milk")
    quote, answer = telegram.bot_messages(CHAT)
    assert quote.text == "remind me to buy milk"
    assert [e["type"] for e in quote.entities] == ["blockquote"]
    assert answer.text == "Echo: remind me to buy milk"
    [upload] = model.audio.uploads
    assert upload.file_name == "voice.ogg" and upload.data == samples.ogg_opus()
    # (The emulator checks the key on every path: OPENAI_API_KEY went to the same server.)
    user = (await stored_messages(database_url, CHAT))[0]
    assert user.content == "remind me to buy milk" and user.has_parts


async def test_transcript_hidden_when_show_transcript_is_off(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.audio.enqueue("hello there")
    async with BotRuntime(make_settings(show_transcript=False)):
        telegram.send_video_note(CHAT, samples.mp4_bytes())
        await answered(telegram, CHAT, "Echo: hello there")
    assert texts(telegram, CHAT) == ["Echo: hello there"]


async def test_document_without_caption_asks_and_the_next_question_reads_it(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    data = samples.docx_bytes(["Budget 2027", "Travel: 12k"])
    async with BotRuntime(make_settings()):
        telegram.send_document(CHAT, data, file_name="plan.docx")
        await answered(telegram, CHAT, "I've read plan.docx. What should I do with it?")
        assert model.chat_requests() == []
        telegram.send_text(CHAT, "How much for travel?")
        await answered(telegram, CHAT, "Echo: How much for travel?")
    [body] = model.chat_requests()
    document, question = body["messages"][-2:]
    assert document["content"].startswith("[document: plan.docx]\nBudget 2027")
    assert question["content"] == "How much for travel?"


async def test_responses_api_gets_input_image_and_completions_the_placeholder(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    photo = samples.image_bytes(640, 480)
    async with BotRuntime(make_settings(model=VISION_MODEL, openai_api="responses")) as bot:
        telegram.send_photo(CHAT, photo, caption="Describe it")
        await answered(telegram, CHAT, "Echo: Describe it")
        assert bot.runner is not None
        factor = bot.runner.recall.calibration.factor(VISION_MODEL)
    [body] = model.bodies("/v1/responses")
    [image, question] = body["input"][-1]["content"]
    assert question == {"type": "input_text", "text": "Describe it"}
    assert image["type"] == "input_image" and decoded(image["image_url"]).size == (640, 480)
    assert 0.95 <= factor <= 1.05  # the server's usage agrees with our image count
    legacy = make_settings(model="gpt-3.5-turbo-instruct", openai_api="completions")
    async with BotRuntime(legacy):
        telegram.send_photo(CHAT + 1, photo, caption="And now?")
        await telegram.wait_for(lambda: len(texts(telegram, CHAT + 1)) == 2, timeout=15)
    [prompt] = [b["prompt"] for b in model.bodies("/v1/completions")]
    assert prompt.endswith("User: [image: photo, 640×480]\n\nAnd now?\n\nAssistant:")


async def test_export_carries_the_image_and_forget_deletes_it(
    make_settings: SettingsFactory,
    telegram: BotAPIEmulator,
    model: OpenAIEmulator,
    database_url: str,
) -> None:
    settings = make_settings(model=VISION_MODEL)
    async with BotRuntime(settings):
        telegram.send_photo(CHAT, samples.image_bytes(320, 200), caption="Keep this")
        await answered(telegram, CHAT, "Echo: Keep this")
        telegram.send_text(CHAT, "/export")
        await telegram.wait_for(lambda: len(telegram.calls_for("sendDocument")) == 2, 15)
        jsonl = telegram.calls_for("sendDocument")[1].params["document"].data.decode()
        # `python -m bot export` writes the same lines for every chat.
        assert await cli_export(settings) == jsonl
        telegram.send_text(CHAT, "/forget")
        await telegram.wait_for(lambda: texts(telegram, CHAT)[-1].startswith("Delete"), 15)
        ask = telegram.bot_messages(CHAT)[-1]
        telegram.press_button(CHAT, ask.message_id, f"forget:{CHAT}:yes")
        await telegram.wait_for(lambda: texts(telegram, CHAT)[-1].startswith("Done"), 15)
    [line] = [json.loads(line) for line in jsonl.splitlines()]
    user, answer = line["messages"][-2:]
    [image, caption] = user["content"]
    assert caption == {"type": "text", "text": "Keep this"}
    assert decoded(image["image_url"]["url"]).size == (320, 200)
    assert answer == {"role": "assistant", "content": "Echo: Keep this"}
    assert await content_rows(database_url) == 0


async def cli_export(settings: Settings) -> str:
    from bot.__main__ import _export

    return await _export(settings)


async def content_rows(database_url: str) -> int:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return int(await session.scalar(select(func.count()).select_from(MessageContent)) or 0)
    finally:
        await engine.dispose()


async def test_photo_on_the_default_settings_goes_at_low_detail(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    """gpt-4o-mini counts 25,501 tokens for this photo at high detail: more than 16k."""
    async with BotRuntime(make_settings()):
        telegram.send_photo(CHAT, samples.image_bytes(1024, 768), caption="What's this?")
        await answered(telegram, CHAT, "Echo: What's this?")
    [image] = image_parts(model.chat_requests()[0])
    assert image["image_url"]["detail"] == "low"


async def test_group_album_addressed_in_its_caption_is_one_turn_by_its_sender(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    group = -100_777
    async with BotRuntime(make_settings(model=VISION_MODEL)):
        images = [samples.image_bytes(200 + n, 100) for n in range(2)]
        # Not addressed to the bot: ignored, album and all.
        telegram.send_album(group, images, caption="our holiday", chat_type="group", user_id=7)
        telegram.send_album(
            group, images, caption="@memory_test_bot which is sharper?", chat_type="group"
        )
        await telegram.wait_for(lambda: len(texts(telegram, group)) == 1, timeout=15)
    [body] = model.chat_requests()
    user = body["messages"][-1]["content"]
    assert [item["type"] for item in user] == ["text", "image_url", "image_url", "text"]
    assert user[0]["text"] == "Alice:" and user[-1]["text"] == "which is sharper?"


async def test_scanned_pdf_on_a_vision_model_sends_its_first_pages_as_images(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    async with BotRuntime(make_settings(model=VISION_MODEL)):
        telegram.send_document(
            CHAT, samples.scanned_pdf(5), file_name="scan.pdf", caption="What does it say?"
        )
        await answered(telegram, CHAT, "Echo: What does it say?")
    assert texts(telegram, CHAT)[0].startswith("(That PDF has no text layer")
    assert len(image_parts(model.chat_requests()[0])) == 3


async def test_retry_of_a_photo_turn_sends_the_image_again(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    async with BotRuntime(make_settings(model=VISION_MODEL)):
        telegram.send_photo(CHAT, samples.image_bytes(300, 300), caption="Again?")
        await answered(telegram, CHAT, "Echo: Again?")
        telegram.send_text(CHAT, "/retry")
        await telegram.wait_for(lambda: len(model.chat_requests()) == 2, timeout=15)
        await telegram.wait_for(lambda: texts(telegram, CHAT).count("Echo: Again?") == 2, 15)
    first, second = model.chat_requests()
    assert first["messages"] == second["messages"] and len(image_parts(second)) == 1


async def test_a_profile_transcribes_with_its_own_model(
    make_settings: SettingsFactory, telegram: BotAPIEmulator, model: OpenAIEmulator
) -> None:
    model.audio.enqueue("hello from the profile")
    settings = make_settings(
        admin_user_ids=str(CHAT),
        model_profiles='{"ears": {"model": "gpt-4o", "transcription_model": "gpt-4o-transcribe"}}',
    )
    async with BotRuntime(settings):
        telegram.send_text(CHAT, "/profile ears")
        await telegram.wait_for(lambda: len(texts(telegram, CHAT)) == 1, timeout=15)
        telegram.send_voice(CHAT, samples.ogg_opus())
        await answered(telegram, CHAT, "Echo: hello from the profile")
    [upload] = model.audio.uploads
    assert upload.fields["model"] == "gpt-4o-transcribe"
    assert model.chat_requests()[-1]["model"] == "gpt-4o"
