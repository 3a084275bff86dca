"""``POST /v1/images/generations`` of the OpenAI emulator.

Validated like OpenAI: ``prompt`` required, ``n`` 1..10, a size the model supports;
``gpt-image-*`` models always answer base64 and reject ``response_format``; DALL·E models
answer URLs unless ``response_format: "b64_json"``. The image is a real 1×1 PNG.
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from typing import Any

from aiohttp import web

from emulators.openai_errors import ApiError

IMAGES_PATH = "/v1/images/generations"
SIZES = {
    "gpt-image-1": ("auto", "1024x1024", "1536x1024", "1024x1536"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
}


def tiny_png() -> bytes:
    """A valid 1×1 red PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


PNG = tiny_png()


def validate_image_request(body: dict[str, Any]) -> str:
    """Check the body; returns the model."""
    model = body.get("model", "dall-e-2")
    if model not in SIZES:
        raise ApiError(400, f"Invalid value for 'model': '{model}'.", param="model")
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise ApiError(400, "Missing required parameter: 'prompt'.", param="prompt")
    n = body.get("n", 1)
    if not isinstance(n, int) or not 1 <= n <= 10:
        raise ApiError(400, f"Invalid 'n': integer above maximum value. Got {n}.", param="n")
    size = body.get("size", SIZES[model][1] if model != "dall-e-2" else "1024x1024")
    if size not in SIZES[model]:
        allowed = ", ".join(f"'{s}'" for s in SIZES[model])
        raise ApiError(
            400, f"Invalid value: '{size}'. Supported values are: {allowed}.", param="size"
        )
    if model.startswith("gpt-image") and "response_format" in body:
        raise ApiError(400, "Unknown parameter: 'response_format'.", param="response_format")
    if body.get("response_format", "url") not in ("url", "b64_json"):
        raise ApiError(400, "Invalid value for 'response_format'.", param="response_format")
    return str(model)


async def handle_images(request: web.Request) -> web.StreamResponse:
    try:
        body = await request.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise ApiError(400, "We could not parse the JSON body of your request.")
    model = validate_image_request(body)
    b64 = model.startswith("gpt-image") or body.get("response_format") == "b64_json"
    item: dict[str, Any] = (
        {"b64_json": base64.b64encode(PNG).decode()}
        if b64
        else {"url": "https://images.emulator.invalid/1.png"}
    )
    if model == "dall-e-3":
        item["revised_prompt"] = f"A picture of {body['prompt']}"
    answer: dict[str, Any] = {"created": int(time.time()), "data": [item] * body.get("n", 1)}
    if model.startswith("gpt-image"):
        answer["usage"] = {"input_tokens": 10, "output_tokens": 272, "total_tokens": 282}
    return web.json_response(answer)
