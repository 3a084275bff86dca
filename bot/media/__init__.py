"""Attachments (photos, voice, audio, video notes, documents) as parts of the conversation.

    attachment_from_message(message_json) -> Attachment | None
    MediaProcessor(files, transcriber, options).prepare(attachment, target, counter) -> Prepared

Prepared parts are `bot.parts` parts (image, audio transcript, document text, the caption as
text), each with its token count: the turn stores them and bot.llm.bodies sends them.

Errors are MediaError(code, **values); the frontend renders the sentence.
"""

from bot.llm.image_tokens import sees_images
from bot.media.audio import Transcriber
from bot.media.build import media_processor
from bot.media.download import TelegramFiles
from bot.media.incoming import attachment_from_message
from bot.media.options import MediaOptions, ModelTarget
from bot.media.prepare import MediaProcessor
from bot.media.types import (
    Attachment,
    DocumentError,
    DownloadError,
    ImageError,
    MediaError,
    Note,
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
    "Prepared",
    "TelegramFiles",
    "Transcriber",
    "TranscriptionError",
    "attachment_from_message",
    "media_processor",
    "sees_images",
]
