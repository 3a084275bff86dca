"""A message's content as ordered, typed parts (after simonw/llm's parts).

Kinds: text, image, audio transcript, document text, tool call, tool result. Every part has a
text form, `text` — the caption or description of an image, a transcript, a document's
extracted text, a tool's output — which `messages.content` holds joined, for search, export
and fast fitting. `tokens` is the part's cost as sent, counted once when it is stored (0 until
then), so a trimmed prompt can drop parts whole.

A message made of text alone needs none of this: its content is the plain string, stored in
`messages.content` with no part rows, and sent as a plain string. `encode`/`decode` turn a part
into the columns of a `message_content` row and back; unknown kinds (written by a newer
version) read back as their text form.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any, ClassVar

PART_SEPARATOR = "\n\n"


@dataclass(frozen=True, slots=True)
class FileRef:
    """The Telegram file an attachment came from (ids only: its download URL holds the token)."""

    file_id: str
    file_unique_id: str
    size: int | None = None


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str
    tokens: int = 0
    kind: ClassVar[str] = "text"


@dataclass(frozen=True, slots=True)
class ImagePart:
    """An image as sent to the model (`data`: e.g. a downscaled JPEG); `text` describes it."""

    data: bytes = field(repr=False)
    mime: str = "image/jpeg"
    text: str = ""  # caption or description: what stands in for the image without vision
    detail: str = "auto"
    width: int = 0
    height: int = 0
    file: FileRef | None = None
    tokens: int = 0
    kind: ClassVar[str] = "image"

    @property
    def data_url(self) -> str:
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


@dataclass(frozen=True, slots=True)
class AudioTranscriptPart:
    """A voice message or audio file, kept as its transcript."""

    text: str
    mime: str = ""
    duration: float | None = None  # seconds
    file: FileRef | None = None
    tokens: int = 0
    kind: ClassVar[str] = "audio_transcript"


@dataclass(frozen=True, slots=True)
class DocumentTextPart:
    """A document, kept as the text extracted from it."""

    text: str
    name: str = ""
    mime: str = ""
    file: FileRef | None = None
    tokens: int = 0
    kind: ClassVar[str] = "document_text"


@dataclass(frozen=True, slots=True)
class ToolCallPart:
    """A function call the assistant asked for; `arguments` is the JSON text the model wrote."""

    call_id: str
    name: str
    arguments: str
    tokens: int = 0
    kind: ClassVar[str] = "tool_call"

    @property
    def text(self) -> str:
        return f"{self.name}({self.arguments})"


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    """What a tool returned for one call (`text`, its output as sent to the model)."""

    call_id: str
    text: str
    name: str = ""
    is_error: bool = False
    tokens: int = 0
    kind: ClassVar[str] = "tool_result"


Part = TextPart | ImagePart | AudioTranscriptPart | DocumentTextPart | ToolCallPart | ToolResultPart
Content = str | tuple[Part, ...]  # a plain string, or ordered parts


def is_plain(parts: tuple[Part, ...]) -> bool:
    """Whether parts are text alone (then the joined string says everything)."""
    return all(isinstance(part, TextPart) for part in parts)


def text_form(content: Content) -> str:
    """The plain text of a content: what `messages.content` holds, searched and exported."""
    if isinstance(content, str):
        return content
    return PART_SEPARATOR.join(part.text for part in content if part.text)


def prompt_text(part: Part) -> str:
    """A part as text in a prompt that cannot carry it as it is (completions mode, no vision)."""
    if isinstance(part, ImagePart):
        return f"[image: {part.text}]" if part.text else "[image]"
    if isinstance(part, DocumentTextPart) and part.name:
        return f"[document: {part.name}]\n{part.text}"
    if isinstance(part, ToolCallPart):
        return f"[tool call {part.call_id}: {part.text}]"
    if isinstance(part, ToolResultPart):
        return f"[tool result {part.call_id}: {part.text}]"
    return part.text


def as_prompt_text(content: Content) -> str:
    """A whole content as prompt text: parts in order, each by `prompt_text`."""
    if isinstance(content, str):
        return content
    return PART_SEPARATOR.join(text for part in content if (text := prompt_text(part)))


# Storage: kind, text form, kind-specific fields (JSON), bytes.


def _file(ref: FileRef | None) -> dict[str, Any]:
    if ref is None:
        return {}
    return {
        "file": {"file_id": ref.file_id, "file_unique_id": ref.file_unique_id, "size": ref.size}
    }


def _file_ref(data: dict[str, Any]) -> FileRef | None:
    found = data.get("file")
    if not isinstance(found, dict):
        return None
    return FileRef(str(found["file_id"]), str(found["file_unique_id"]), found.get("size"))


def encode(part: Part) -> tuple[str, str, dict[str, Any], bytes | None]:
    """(kind, text form, kind-specific fields, bytes) of a part, as stored."""
    if isinstance(part, TextPart):
        return part.kind, part.text, {}, None
    if isinstance(part, ImagePart):
        fields = {"mime": part.mime, "detail": part.detail, "width": part.width}
        fields |= {"height": part.height, **_file(part.file)}
        return part.kind, part.text, fields, part.data
    if isinstance(part, AudioTranscriptPart):
        fields = {"mime": part.mime, "duration": part.duration, **_file(part.file)}
        return part.kind, part.text, fields, None
    if isinstance(part, DocumentTextPart):
        return (
            part.kind,
            part.text,
            {"name": part.name, "mime": part.mime, **_file(part.file)},
            None,
        )
    if isinstance(part, ToolCallPart):
        fields = {"call_id": part.call_id, "name": part.name, "arguments": part.arguments}
        return part.kind, part.text, fields, None
    fields = {"call_id": part.call_id, "name": part.name, "is_error": part.is_error}
    return part.kind, part.text, fields, None


def decode(kind: str, text: str, data: dict[str, Any], blob: bytes | None, tokens: int) -> Part:
    """The part a stored row holds; an unknown kind reads back as its text form."""
    if kind == ImagePart.kind:
        return ImagePart(
            blob or b"",
            data.get("mime", "image/jpeg"),
            text,
            data.get("detail", "auto"),
            data.get("width", 0),
            data.get("height", 0),
            _file_ref(data),
            tokens,
        )
    if kind == AudioTranscriptPart.kind:
        return AudioTranscriptPart(
            text, data.get("mime", ""), data.get("duration"), _file_ref(data), tokens
        )
    if kind == DocumentTextPart.kind:
        return DocumentTextPart(
            text, data.get("name", ""), data.get("mime", ""), _file_ref(data), tokens
        )
    if kind == ToolCallPart.kind:
        return ToolCallPart(data["call_id"], data["name"], data["arguments"], tokens)
    if kind == ToolResultPart.kind:
        return ToolResultPart(
            data["call_id"], text, data.get("name", ""), bool(data.get("is_error")), tokens
        )
    return TextPart(text, tokens)
