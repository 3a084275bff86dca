"""Which attachment a Bot API message carries (bot/media/incoming.py)."""

from __future__ import annotations

from bot.llm.image_tokens import sees_images
from bot.media import attachment_from_message
from bot.media.options import ModelTarget


def test_photo_takes_the_largest_size_and_the_caption() -> None:
    message = {
        "message_id": 1,
        "caption": "What is this?",
        "media_group_id": "1234",
        "photo": [
            {"file_id": "s", "file_unique_id": "us", "width": 90, "height": 67, "file_size": 1},
            {"file_id": "l", "file_unique_id": "ul", "width": 1280, "height": 960, "file_size": 9},
            {"file_id": "m", "file_unique_id": "um", "width": 320, "height": 240, "file_size": 3},
        ],
    }
    attachment = attachment_from_message(message)
    assert attachment is not None
    assert (attachment.kind, attachment.file_id, attachment.size) == ("photo", "l", 9)
    assert (attachment.width, attachment.height) == (1280, 960)
    assert attachment.caption == "What is this?" and attachment.media_group_id == "1234"


def test_image_document_voice_video_note_and_unsupported() -> None:
    document = {
        "file_id": "d",
        "file_unique_id": "ud",
        "file_name": "a.png",
        "mime_type": "image/png",
    }
    assert attachment_from_message({"document": document}).kind == "image"  # type: ignore[union-attr]
    pdf = {**document, "file_name": "a.pdf", "mime_type": "application/pdf"}
    assert attachment_from_message({"document": pdf}).kind == "document"  # type: ignore[union-attr]
    voice = attachment_from_message(
        {"voice": {"file_id": "v", "file_unique_id": "uv", "duration": 3, "mime_type": "audio/ogg"}}
    )
    assert voice is not None and (voice.kind, voice.duration, voice.mime) == (
        "voice",
        3,
        "audio/ogg",
    )
    note = attachment_from_message({"video_note": {"file_id": "n", "length": 240, "duration": 2}})
    assert note is not None and (note.kind, note.width, note.height) == ("video_note", 240, 240)
    sticker = attachment_from_message({"sticker": {"file_id": "st", "file_unique_id": "ust"}})
    assert sticker is not None and (sticker.kind, sticker.source) == ("unsupported", "sticker")
    location = attachment_from_message({"location": {"latitude": 1.0, "longitude": 2.0}})
    assert location is not None and location.source == "location"
    assert attachment_from_message({"text": "hello"}) is None


def test_vision_by_model_name_unless_configured() -> None:
    assert sees_images("gpt-4o-mini") and sees_images("openai/gpt-4.1-mini")
    assert sees_images("o4-mini") and sees_images("qwen2.5-vl-7b") and sees_images("llava:13b")
    assert not sees_images("o3-mini") and not sees_images("gpt-3.5-turbo")
    assert not sees_images("test-model") and not sees_images("llama-3.1-8b")
    assert sees_images("test-model", vision=True) and not sees_images("gpt-4o", vision=False)
    assert ModelTarget.for_model("gpt-4o") == ModelTarget("gpt-4o", True)


def test_media_without_a_file_id_is_unsupported_with_its_field() -> None:
    for message in ({"photo": [{}, {"width": 9}]}, {"voice": {"duration": 3}}, {"document": {}}):
        found = attachment_from_message(message)
        assert found is not None and (found.kind, found.file_id) == ("unsupported", "")
        assert found.source == next(iter(message))
