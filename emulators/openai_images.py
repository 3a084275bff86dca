"""Image content parts in the OpenAI emulator: validation as strict servers do, and usage.

chat/completions: ``image_url`` parts (``{"url": ..., "detail": auto|low|high}``) only in
``user`` messages and only for models marked as vision (else OpenAI's 400 "Invalid content type.
image_url is only supported by certain models."); Responses: ``input_image`` items likewise.
A ``data:`` URL must hold a decodable JPEG, PNG, GIF or WebP; any other URL is refused when
``require_data_urls`` is set (this emulator cannot download). Token usage of each image follows
OpenAI's vision guide, written here independently of the bot's own counter: tiles for the
gpt-4o family, 32-px patches for gpt-4.1-mini/nano, gpt-5-mini/nano and o4-mini.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
from typing import Any

from PIL import Image

from emulators.openai_errors import ApiError

CHAT_PART_TYPES = ("text", "image_url", "input_audio", "refusal", "audio", "file")
RESPONSES_PART_TYPES = ("input_text", "input_image", "input_file", "output_text", "refusal")
DETAILS = ("auto", "low", "high")
IMAGE_MIMES = ("image/jpeg", "image/png", "image/gif", "image/webp")
DATA_URL = re.compile(r"^data:(?P<mime>[\w/+.-]+);base64,(?P<data>.*)$", re.DOTALL)
NOT_VISION = "Invalid content type. image_url is only supported by certain models."
INVALID_IMAGE = (
    "The image data you provided does not represent a valid image. Please check your input and "
    "try again with one of the supported image formats: "
    "['image/jpeg', 'image/png', 'image/gif', 'image/webp']."
)
TILE_COSTS = (  # (prefix, base, per tile), most specific first
    ("gpt-4o-mini", 2833, 5667),
    ("o1", 75, 150),
    ("o3", 75, 150),
)
PATCH_MULTIPLIERS = (
    ("gpt-4.1-mini", 1.62),
    ("gpt-4.1-nano", 2.46),
    ("gpt-5-mini", 1.62),
    ("gpt-5-nano", 2.46),
    ("o4-mini", 1.72),
)


def _supported(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return ", ".join(quoted[:-1]) + f", and {quoted[-1]}"


def _invalid_value(value: Any, values: tuple[str, ...], param: str) -> ApiError:
    return ApiError(
        400,
        f"Invalid value: '{value}'. Supported values are: {_supported(values)}.",
        param=param,
        code="invalid_value",
    )


class ImageRules:
    """Which models see images, whether only ``data:`` URLs are accepted; checks and costs."""

    def __init__(self, vision_models: set[str]) -> None:
        self.vision_models = vision_models
        self.require_data_urls = False

    # --- chat/completions ----------------------------------------------------------------------

    def check_chat(self, body: dict[str, Any]) -> int:
        """Validate the image parts of a chat body; return the image tokens they cost."""
        model = str(body["model"])
        tokens = 0
        for i, message in enumerate(body["messages"]):
            content = message.get("content")
            if not isinstance(content, list):
                continue
            for j, part in enumerate(content):
                where = f"messages.[{i}].content.[{j}]"
                kind = part["type"]
                if kind not in CHAT_PART_TYPES:
                    raise _invalid_value(kind, CHAT_PART_TYPES, f"{where}.type")
                if kind != "image_url":
                    continue
                if message.get("role") != "user":
                    raise ApiError(
                        400,
                        "Image URLs are only allowed for messages with role 'user', but this "
                        f"message with role '{message.get('role')}' contains an image URL.",
                        param=f"messages.[{i}].content",
                        code="invalid_value",
                    )
                self._check_vision(model, f"{where}.type")
                image = part.get("image_url")
                if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                    raise ApiError(
                        400, f"Missing required parameter: '{where}.image_url.url'.", param=where
                    )
                detail = image.get("detail", "auto")
                if detail not in DETAILS:
                    raise _invalid_value(detail, DETAILS, f"{where}.image_url.detail")
                tokens += self._cost(model, image["url"], str(detail), where)
        return tokens

    # --- Responses -----------------------------------------------------------------------------

    def check_responses(self, body: dict[str, Any]) -> int:
        """Validate the image items of a Responses body; return the image tokens they cost."""
        items = body.get("input")
        if not isinstance(items, list):
            return 0
        model = str(body["model"])
        tokens = 0
        for i, item in enumerate(items):
            content = item.get("content")
            if not isinstance(content, list):
                continue
            for j, part in enumerate(content):
                where = f"input[{i}].content[{j}]"
                kind = part.get("type") if isinstance(part, dict) else None
                if kind not in RESPONSES_PART_TYPES:
                    raise _invalid_value(kind, RESPONSES_PART_TYPES, f"{where}.type")
                if kind != "input_image":
                    continue
                self._check_vision(model, f"{where}.type")
                url = part.get("image_url")
                if not isinstance(url, str):
                    raise ApiError(
                        400, f"Missing required parameter: '{where}.image_url'.", param=where
                    )
                detail = part.get("detail", "auto")
                if detail not in DETAILS:
                    raise _invalid_value(detail, DETAILS, f"{where}.detail")
                tokens += self._cost(model, url, str(detail), where)
        return tokens

    # --- shared ----------------------------------------------------------------------------------

    def _check_vision(self, model: str, param: str) -> None:
        if model not in self.vision_models:
            raise ApiError(400, NOT_VISION, param=param, code="invalid_value")

    def _cost(self, model: str, url: str, detail: str, where: str) -> int:
        match = DATA_URL.match(url)
        if match is None:
            if self.require_data_urls or not url.startswith(("http://", "https://")):
                raise ApiError(
                    400, f"Error while downloading {url}.", param=where, code="invalid_image_url"
                )
            return tokens_for(model, 512, 512, detail)  # a remote image, as if 512×512
        if match["mime"] not in IMAGE_MIMES:
            raise ApiError(400, INVALID_IMAGE, param=where, code="invalid_image_format")
        try:
            raw = base64.b64decode(match["data"], validate=True)
            with Image.open(io.BytesIO(raw)) as image:
                image.verify()
                width, height = image.size
        except (binascii.Error, ValueError, OSError, SyntaxError):
            raise ApiError(400, INVALID_IMAGE, param=where, code="invalid_image_format") from None
        return tokens_for(model, width, height, detail)


def tokens_for(model: str, width: int, height: int, detail: str) -> int:
    """Prompt tokens of one image per OpenAI's vision guide."""
    for prefix, multiplier in PATCH_MULTIPLIERS:
        if model.startswith(prefix):
            return math.ceil(_patches(width, height) * multiplier)
    base, tile = next(((b, t) for p, b, t in TILE_COSTS if model.startswith(p)), (85, 170))
    if detail == "low":
        return base
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        w, h = w * 2048 / max(w, h), h * 2048 / max(w, h)
    if min(w, h) > 768:
        w, h = w * 768 / min(w, h), h * 768 / min(w, h)
    return base + tile * math.ceil(w / 512) * math.ceil(h / 512)


def _patches(width: int, height: int) -> int:
    count = math.ceil(width / 32) * math.ceil(height / 32)
    if count <= 1536:
        return count
    shrink = math.sqrt(32 * 32 * 1536 / (width * height))
    shrink *= min(
        math.floor(width * shrink / 32) / (width * shrink / 32),
        math.floor(height * shrink / 32) / (height * shrink / 32),
    )
    return min(1536, math.ceil(width * shrink / 32) * math.ceil(height * shrink / 32))
