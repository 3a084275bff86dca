"""What an image costs in prompt tokens, per OpenAI's vision guide ("Calculating costs").

Tile models (the gpt-4o family, gpt-4.1, gpt-5, o1, o3): the image is scaled to fit 2048×2048,
then its shortest side to 768 px; each 512-px tile costs `tile` tokens, plus `base`; detail
"low" costs `base` alone. gpt-4o-mini bills the same dollars with larger constants.
Patch models (gpt-4.1-mini/nano, gpt-5-mini/nano, o4-mini): 32-px patches, scaled down to at
most 1536 of them, times a per-model multiplier. "auto" is counted as "high" (the server may
choose less, never more), and an unknown model is counted as gpt-4o. An image of unknown
size counts as the largest a fitted image can be (768 × 2048).

`sees_images` says which models take image parts at all (VISION, else by the model's name).
"""

from __future__ import annotations

import math
from typing import Literal

ImageDetail = Literal["auto", "low", "high"]


TILE = 512
PATCH = 32
MAX_PATCHES = 1536

# (base, per tile), most specific prefix first.
TILE_MODELS: tuple[tuple[str, int, int], ...] = (
    ("gpt-4o-mini", 2833, 5667),
    ("computer-use", 65, 129),
    ("o1", 75, 150),
    ("o3", 75, 150),
    ("gpt-4o", 85, 170),
    ("chatgpt-4o", 85, 170),
    ("gpt-4.1", 85, 170),
    ("gpt-4.5", 85, 170),
    ("gpt-5", 85, 170),
)
# Multiplier per patch; checked before TILE_MODELS (gpt-4.1-mini before gpt-4.1).
PATCH_MODELS: tuple[tuple[str, float], ...] = (
    ("gpt-4.1-mini", 1.62),
    ("gpt-4.1-nano", 2.46),
    ("gpt-5-mini", 1.62),
    ("gpt-5-nano", 2.46),
    ("o4-mini", 1.72),
)
DEFAULT_TILE = (85, 170)


def image_tokens(model: str, width: int, height: int, detail: ImageDetail = "auto") -> int:
    """Prompt tokens of one `width`×`height` image sent to `model` with `detail`."""
    if width <= 0 or height <= 0:
        width, height = 768, 2048
    name = model.rsplit("/", 1)[-1].lower()
    for prefix, multiplier in PATCH_MODELS:
        if name.startswith(prefix):
            return math.ceil(patches(width, height) * multiplier)
    base, tile = next(
        ((b, t) for prefix, b, t in TILE_MODELS if name.startswith(prefix)), DEFAULT_TILE
    )
    if detail == "low":
        return base
    return base + tile * tiles(width, height)


def tiles(width: int, height: int) -> int:
    """512-px tiles of the image once fitted in 2048² and its shortest side scaled to 768."""
    w, h = float(width), float(height)
    if max(w, h) > 2048:
        scale = 2048 / max(w, h)
        w, h = w * scale, h * scale
    if min(w, h) > 768:
        scale = 768 / min(w, h)
        w, h = w * scale, h * scale
    return math.ceil(w / TILE) * math.ceil(h / TILE)


def patches(width: int, height: int) -> int:
    """32-px patches covering the image, after scaling it down to at most 1536 of them."""
    raw = math.ceil(width / PATCH) * math.ceil(height / PATCH)
    if raw <= MAX_PATCHES:
        return raw
    ratio = math.sqrt(PATCH * PATCH * MAX_PATCHES / (width * height))
    w, h = width * ratio / PATCH, height * ratio / PATCH
    ratio *= min(math.floor(w) / w, math.floor(h) / h)
    fitted = math.ceil(width * ratio / PATCH) * math.ceil(height * ratio / PATCH)
    return min(fitted, MAX_PATCHES)


# Model names (provider prefixes dropped) that accept image parts, when VISION is unset.
VISION_PREFIXES = (
    "gpt-4o",
    "chatgpt-4o",
    "gpt-4.1",
    "gpt-4.5",
    "gpt-4-turbo",
    "gpt-4-vision",
    "gpt-5",
    "o1",
    "o3",
    "o4",
    "computer-use",
)
TEXT_ONLY_NAMES = ("o1-mini", "o3-mini", "gpt-4o-audio", "gpt-4o-realtime", "gpt-4o-mini-audio")
VISION_MARKERS = ("vision", "-vl", "llava", "pixtral", "gemma-3", "qwen2.5-omni")


def sees_images(model: str, vision: bool | None = None) -> bool:
    """Whether `model` accepts image parts: the VISION setting when given, else by its name."""
    if vision is not None:
        return vision
    name = model.rsplit("/", 1)[-1].lower()
    if name.startswith(TEXT_ONLY_NAMES):
        return False
    return name.startswith(VISION_PREFIXES) or any(m in name for m in VISION_MARKERS)
