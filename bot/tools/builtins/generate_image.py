"""Built-in ``generate_image``: ``POST {base}/images/generations``, the image sent as a photo.

The answer's ``b64_json`` becomes an `Attachment` the frontend sends; the model only reads
a line saying the image was sent (it never sees the bytes). Image URLs in the answer are
not downloaded (that would be an unchecked fetch).
"""

from __future__ import annotations

import base64
import binascii
import logging

import httpx

from bot.tools.registry import ToolSpec
from bot.tools.types import Attachment, JSONObject, ToolContext, ToolOutput

logger = logging.getLogger(__name__)

MAX_PROMPT = 4000
SIGNATURES = ((b"\x89PNG", "image/png"), (b"\xff\xd8\xff", "image/jpeg"), (b"RIFF", "image/webp"))

SPEC = ToolSpec(
    name="generate_image",
    description=(
        "Generate an image from a text description; it is sent to the user as a photo. "
        "Describe the picture in detail in 'prompt'."
    ),
    parameters={
        "type": "object",
        "properties": {"prompt": {"type": "string", "description": "What to draw."}},
        "required": ["prompt"],
    },
)


def image_type(data: bytes) -> str:
    """The MIME type from the first bytes (PNG when unknown)."""
    return next((mime for magic, mime in SIGNATURES if data.startswith(magic)), "image/png")


class GenerateImage:
    """Calls the images endpoint of the bot's OpenAI-compatible server."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        *,
        base_url: str,
        api_key: str,
        model: str,
        size: str,
    ) -> None:
        self.client = client
        self.url = base_url.rstrip("/") + "/images/generations"
        self._api_key = api_key
        self.model = model
        self.size = size

    def __repr__(self) -> str:
        return f"GenerateImage(url={self.url!r}, model={self.model!r})"

    def body(self, prompt: str) -> JSONObject:
        body: JSONObject = {"model": self.model, "prompt": prompt, "n": 1, "size": self.size}
        if not self.model.startswith("gpt-image"):  # dall-e answers with URLs unless asked
            body["response_format"] = "b64_json"
        return body

    async def __call__(self, arguments: JSONObject, context: ToolContext) -> ToolOutput:
        prompt = arguments.get("prompt")
        if not isinstance(prompt, str) or not prompt.strip():
            return ToolOutput("Error: describe the image in 'prompt'.", True)
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        try:
            response = await self.client.post(
                self.url, json=self.body(prompt.strip()[:MAX_PROMPT]), headers=headers
            )
        except httpx.HTTPError as exc:
            return ToolOutput(
                f"Error: the image server is unreachable ({type(exc).__name__}).", True
            )
        if response.status_code != 200:
            return ToolOutput(f"Error: image generation failed: {_error_text(response)}", True)
        try:
            item = response.json()["data"][0]
            data = base64.b64decode(item["b64_json"], validate=True)
        except (ValueError, KeyError, IndexError, TypeError, binascii.Error):
            return ToolOutput("Error: the image server sent no image data.", True)
        revised = item.get("revised_prompt") if isinstance(item, dict) else None
        photo = Attachment("photo", data, image_type(data), caption="")
        text = "The image was generated and sent to the user as a photo."
        if isinstance(revised, str) and revised:
            text += f" Revised prompt: {revised}"
        return ToolOutput(text, attachments=(photo,))


def _error_text(response: httpx.Response) -> str:
    try:
        message = response.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = ""
    return f"HTTP {response.status_code}" + (f": {str(message)[:200]}" if message else "")
