"""Attachments (photos, voice, audio, video notes, documents) as parts of the conversation.

    attachment_from_message(message_json) -> Attachment | None
    MediaProcessor(files, transcriber, options).prepare(attachment, target, counter) -> Prepared
    prompt_parts.chat_content / responses_content / completions_text: parts -> API content

Errors are MediaError(code, **values); the frontend renders the sentence.
"""

from bot.media.audio import Transcriber
from bot.media.download import TelegramFiles
from bot.media.image_tokens import image_tokens
from bot.media.incoming import attachment_from_message
from bot.media.options import MediaOptions, ModelTarget, sees_images
from bot.media.prepare import MediaProcessor
from bot.media.types import (
    Attachment,
    DocumentError,
    DownloadError,
    ImageError,
    MediaError,
    Note,
    Part,
    Prepared,
    TranscriptionError,
)

__all__ = [
    "Attachment",
    "DocumentError",
    "DownloadError",
    "ImageError",
    "MediaError",
    "MediaOptions",
    "MediaProcessor",
    "ModelTarget",
    "Note",
    "Part",
    "Prepared",
    "TelegramFiles",
    "Transcriber",
    "TranscriptionError",
    "attachment_from_message",
    "image_tokens",
    "sees_images",
]
