"""The emulators' media behaviour over real HTTP: Telegram files and OpenAI images and audio."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import telegram

from emulators import media_samples as samples
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator
from emulators.openai_audio import Transcript
from emulators.openai_images import NOT_VISION
from emulators.openai_tokens import count_prompt_tokens

pytestmark = pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")

CHAT = 42


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator(rate_limits=False) as emulator:
        yield emulator


@pytest.fixture
async def ptb(emu: BotAPIEmulator) -> AsyncIterator[telegram.Bot]:
    root = emu.base_url.removesuffix("/bot")
    async with telegram.Bot(
        emu.token, base_url=emu.base_url, base_file_url=f"{root}/file/bot"
    ) as bot:
        yield bot


async def get_file(emu: BotAPIEmulator, file_id: str) -> tuple[int, dict[str, Any]]:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{emu.base_url}{emu.token}/getFile", data={"file_id": file_id}
        )
    return response.status_code, response.json()


# --- Telegram -----------------------------------------------------------------------------------


async def test_photo_update_is_a_photosize_ladder_that_ptb_reads_and_downloads(
    emu: BotAPIEmulator, ptb: telegram.Bot
) -> None:
    original = samples.image_bytes(1600, 1200)
    emu.send_photo(CHAT, original, caption="What is @this?")
    [update] = await ptb.get_updates()
    message = update.message
    assert message is not None and message.caption == "What is @this?"
    assert [e.type for e in message.caption_entities] == ["mention"]
    sides = [(p.width, p.height) for p in message.photo]
    assert sides == [(90, 68), (320, 240), (800, 600), (1280, 960), (1600, 1200)]
    assert len({p.file_unique_id for p in message.photo}) == 5
    assert all(p.file_size for p in message.photo)
    largest = await message.photo[-1].get_file()
    assert largest.file_path is not None and "/photos/file_" in largest.file_path
    assert bytes(await largest.download_as_bytearray()) == original


async def test_album_is_updates_sharing_a_media_group_with_one_caption(
    emu: BotAPIEmulator, ptb: telegram.Bot
) -> None:
    emu.send_album(CHAT, [samples.image_bytes(100, 80) for _ in range(3)], caption="Trip")
    updates = await ptb.get_updates()
    messages = [u.message for u in updates if u.message is not None]
    assert len(messages) == 3
    assert len({m.media_group_id for m in messages}) == 1 and messages[0].media_group_id
    assert [m.caption for m in messages] == ["Trip", None, None]


async def test_voice_audio_video_note_video_and_document_shapes(
    emu: BotAPIEmulator, ptb: telegram.Bot
) -> None:
    emu.send_voice(CHAT, samples.ogg_opus(), duration=4)
    emu.send_audio(CHAT, b"ID3" + b"\x00" * 100, file_name="talk.mp3", duration=60)
    emu.send_video_note(CHAT, samples.mp4_bytes(), length=240)
    emu.send_video(CHAT, samples.mp4_bytes(), caption="sound?")
    emu.send_document(CHAT, b"%PDF-1.4", file_name="a.pdf", mime_type="application/pdf")
    voice, audio, note, video, document = [u.message for u in await ptb.get_updates()]
    assert voice and voice.voice and voice.voice.mime_type == "audio/ogg"
    assert voice.voice.duration in (4, timedelta(seconds=4))  # int or timedelta per PTB
    assert audio and audio.audio and audio.audio.file_name == "talk.mp3"
    assert note and note.video_note and note.video_note.length == 240
    assert video and video.video and video.caption == "sound?"
    assert document and document.document and document.document.file_name == "a.pdf"
    voice_file = await voice.voice.get_file()
    assert voice_file.file_path is not None and voice_file.file_path.endswith(".oga")
    assert bytes(await voice_file.download_as_bytearray()) == samples.ogg_opus()


async def test_get_file_errors_like_telegram(emu: BotAPIEmulator) -> None:
    big = emu.send_document(CHAT, b"x", file_name="big.bin", size=21 * 1024 * 1024)
    status, body = await get_file(emu, big["document"]["file_id"])
    assert (status, body["description"]) == (400, "Bad Request: file is too big")
    status, body = await get_file(emu, "no-such-file")
    assert (status, body["description"]) == (400, "Bad Request: invalid file_id")


async def test_file_server_refuses_a_wrong_token_and_an_unknown_path(emu: BotAPIEmulator) -> None:
    sent = emu.send_document(CHAT, b"hello", file_name="a.txt", mime_type="text/plain")
    _, body = await get_file(emu, sent["document"]["file_id"])
    path = body["result"]["file_path"]
    root = emu.base_url.removesuffix("/bot")
    async with httpx.AsyncClient() as client:
        ok = await client.get(f"{root}/file/bot{emu.token}/{path}")
        wrong = await client.get(f"{root}/file/bot1:WRONG/{path}")
        unknown = await client.get(f"{root}/file/bot{emu.token}/documents/nothing.txt")
    assert (ok.status_code, ok.content) == (200, b"hello")
    assert ok.headers["content-length"] == "5"
    assert wrong.status_code == 404 and unknown.status_code == 404
    assert emu.files.downloads == [path]


# --- OpenAI: image parts -------------------------------------------------------------------------


def image_message(url: str, text: str = "What is this?", detail: str = "high") -> dict[str, Any]:
    return {
        "role": "user",
        "content": [
            {"type": "text", "text": text},
            {"type": "image_url", "image_url": {"url": url, "detail": detail}},
        ],
    }


def jpeg_url(width: int = 1024, height: int = 1024) -> str:
    data = base64.b64encode(samples.image_bytes(width, height)).decode()
    return f"data:image/jpeg;base64,{data}"


async def post(model: OpenAIEmulator, path: str, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(
            f"{model.base_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {model.api_key}"},
        )


@pytest.fixture
async def model() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator() as emulator:
        yield emulator


@pytest.mark.parametrize(
    ("name", "image_cost"), [("gpt-4o", 765), ("gpt-4o-mini", 2833 + 4 * 5667)]
)
async def test_image_usage_follows_the_vision_rules(
    model: OpenAIEmulator, name: str, image_cost: int
) -> None:
    message = image_message(jpeg_url())
    response = await post(model, "/chat/completions", {"model": name, "messages": [message]})
    assert response.status_code == 200, response.text
    text_only = count_prompt_tokens([{"role": "user", "content": "What is this?"}])
    assert response.json()["usage"]["prompt_tokens"] == text_only + image_cost


async def test_image_url_for_a_text_only_model_is_refused_like_openai(
    model: OpenAIEmulator,
) -> None:
    body = {"model": "test-model", "messages": [image_message(jpeg_url(64, 64))]}
    response = await post(model, "/chat/completions", body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["message"] == NOT_VISION and error["type"] == "invalid_request_error"
    assert error["param"] == "messages.[0].content.[1].type"


async def test_other_image_part_errors(model: OpenAIEmulator) -> None:
    def chat(*messages: dict[str, Any]) -> dict[str, Any]:
        return {"model": "gpt-4o", "messages": list(messages)}

    system_image = {**image_message(jpeg_url(8, 8)), "role": "system"}
    bad_data = image_message("data:image/jpeg;base64,bm90IGFuIGltYWdl")
    bad_type = {"role": "user", "content": [{"type": "picture", "url": "x"}]}
    bad_detail = image_message(jpeg_url(8, 8), detail="ultra")
    cases = [system_image, bad_data, bad_type, bad_detail]
    answers = [await post(model, "/chat/completions", chat(m)) for m in cases]
    assert [a.status_code for a in answers] == [400, 400, 400, 400]
    messages = [a.json()["error"]["message"] for a in answers]
    assert "only allowed for messages with role 'user'" in messages[0]
    assert messages[1].startswith("The image data you provided does not represent a valid image")
    assert messages[2].startswith("Invalid value: 'picture'.")
    assert messages[3].startswith("Invalid value: 'ultra'.")


async def test_remote_image_urls_refused_when_configured(model: OpenAIEmulator) -> None:
    body = {"model": "gpt-4o", "messages": [image_message("https://example.com/cat.jpg")]}
    assert (await post(model, "/chat/completions", body)).status_code == 200
    model.images.require_data_urls = True
    refused = await post(model, "/chat/completions", body)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_image_url"


async def test_responses_input_image(model: OpenAIEmulator) -> None:
    item = {
        "role": "user",
        "content": [
            {"type": "input_text", "text": "What is this?"},
            {"type": "input_image", "image_url": jpeg_url(), "detail": "low"},
        ],
    }
    ok = await post(model, "/responses", {"model": "gpt-4o", "input": [item]})
    assert ok.status_code == 200, ok.text
    text_only = count_prompt_tokens([{"role": "user", "content": "What is this?"}])
    assert ok.json()["usage"]["input_tokens"] == text_only + 85
    refused = await post(model, "/responses", {"model": "test-model", "input": [item]})
    assert refused.status_code == 400 and refused.json()["error"]["message"] == NOT_VISION


# --- OpenAI: transcriptions ----------------------------------------------------------------------


async def transcribe(
    model: OpenAIEmulator,
    data: bytes,
    name: str = "voice.ogg",
    *,
    key: str | None = None,
    model_name: str = "whisper-1",
    **fields: str,
) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as client:
        return await client.post(
            f"{model.base_url}/audio/transcriptions",
            data={"model": model_name, **fields},
            files={"file": (name, data, "audio/ogg")},
            headers={"Authorization": f"Bearer {key or model.api_key}"},
        )


async def test_transcription_answers_the_scripted_text(model: OpenAIEmulator) -> None:
    model.audio.enqueue("hello there")
    response = await transcribe(model, samples.ogg_opus(), language="en")
    assert response.status_code == 200 and response.json()["text"] == "hello there"
    [upload] = model.audio.uploads
    assert upload.fields == {"model": "whisper-1", "language": "en"}
    assert (upload.file_name, upload.data) == ("voice.ogg", samples.ogg_opus())
    plain = await transcribe(model, samples.ogg_opus(), response_format="text")
    assert plain.text == "Transcript of voice.ogg"


async def test_transcription_faults(model: OpenAIEmulator) -> None:
    model.audio.enqueue(Transcript(status=500))
    assert (await transcribe(model, samples.ogg_opus())).status_code == 500
    unsupported = await transcribe(model, samples.ogg_opus(), "voice.xyz")
    assert unsupported.status_code == 400
    assert unsupported.json()["error"]["message"].startswith("Invalid file format.")
    corrupt = await transcribe(model, b"not audio at all", "voice.ogg")
    assert corrupt.status_code == 400
    assert corrupt.json()["error"]["message"] == "Audio file might be corrupted or unsupported"
    too_big = await transcribe(model, b"OggS" + b"\x00" * (25 * 1024 * 1024))
    assert too_big.status_code == 413
    assert "Maximum content size limit" in too_big.json()["error"]["message"]
    assert (await transcribe(model, samples.ogg_opus(), key="sk-wrong")).status_code == 401
    assert len(model.audio.uploads) == 1  # only the valid upload, answered with the 500


async def test_transcription_requires_a_known_model(model: OpenAIEmulator) -> None:
    response = await transcribe(model, samples.ogg_opus(), model_name="gpt-4o")
    assert response.status_code == 400
    assert json.loads(response.text)["error"]["param"] == "model"
