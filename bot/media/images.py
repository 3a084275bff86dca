"""Decode an uploaded image and keep a downscaled, metadata-free JPEG of it.

JPEG, PNG, WebP, GIF (first frame) and, with pillow-heif, HEIC/HEIF. The pixel count is checked
from the header before anything is decoded (decompression bombs); a truncated or corrupt file
is an ImageError, never a half-grey picture. EXIF orientation is applied, then every piece of
metadata (EXIF with its GPS position, XMP, comments) is dropped by re-encoding. Transparency is
flattened onto white, so every stored image is a JPEG. CPU-bound: call it in a worker thread.

Pillow (and pillow-heif) are imported on the first image, not with the bot: a bot that is
never sent a photo does not carry them.
"""

from __future__ import annotations

import functools
import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.media.types import BOMB, CORRUPT, UNSUPPORTED, ImageError

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"mif1", b"msf1", b"avif")
FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "HEIF", "MPO", "BMP"})
WHITE = (255, 255, 255)


@dataclass(frozen=True, slots=True)
class ProcessedImage:
    """The stored form of an image: JPEG bytes, their size, and what was done to get them."""

    data: bytes
    width: int
    height: int
    source_format: str  # "JPEG", "PNG", "GIF", ...
    source_width: int
    source_height: int
    flattened: bool  # transparency was composed onto white
    mime: str = "image/jpeg"


def looks_like_image(raw: bytes) -> bool:
    """The leading bytes of a JPEG, PNG, GIF, WebP or HEIF file (a photo sent as a file)."""
    return (
        raw.startswith((b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a"))
        or (raw.startswith(b"RIFF") and raw[8:12] == b"WEBP")
        or is_heif(raw)
    )


def is_heif(raw: bytes) -> bool:
    """An ISO-BMFF file whose brand is HEIF/HEIC/AVIF (`....ftypheic`)."""
    return raw[4:8] == b"ftyp" and raw[8:12] in HEIF_BRANDS


@functools.cache
def heif_supported() -> bool:
    """Whether HEIC/HEIF (iPhone photos sent as files) decode: pillow-heif is installed."""
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - depends on the platform's wheels
        return False
    pillow_heif.register_heif_opener()
    return True


def process_image(
    raw: bytes, *, max_side: int = 2048, max_pixels: int = 60_000_000, quality: int = 85
) -> ProcessedImage:
    """Decode `raw`, downscale its long side to `max_side`, re-encode as JPEG without metadata."""
    from PIL import Image, UnidentifiedImageError

    heif = heif_supported()  # registers the HEIF opener with Pillow, once
    if is_heif(raw) and not heif:
        raise ImageError(UNSUPPORTED, kind="image", mime="image/heic")
    try:
        image = Image.open(io.BytesIO(raw))
    except Image.DecompressionBombError:
        raise ImageError(BOMB, limit=max_pixels) from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise ImageError(CORRUPT) from None
    with image:
        source_format = (image.format or "").upper()
        if source_format not in FORMATS:
            raise ImageError(UNSUPPORTED, kind="image", mime=image.get_format_mimetype())
        width, height = image.size
        if width * height > max_pixels:
            raise ImageError(BOMB, pixels=width * height, limit=max_pixels)
        try:
            return _reencode(image, source_format, max_side, quality)
        except Image.DecompressionBombError:
            raise ImageError(BOMB, limit=max_pixels) from None
        except (OSError, ValueError, SyntaxError, EOFError):
            # Truncated data ("image file is truncated"), broken chunks, bad frames.
            raise ImageError(CORRUPT) from None


def _reencode(
    image: Image.Image, source_format: str, max_side: int, quality: int
) -> ProcessedImage:
    from PIL import Image, ImageOps

    source_width, source_height = image.size
    if source_format == "JPEG":
        image.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4, 1/8 scale when enough
    image.seek(0)  # GIF, WebP, MPO: the first frame
    image.load()
    oriented = ImageOps.exif_transpose(image) or image
    flattened = _has_alpha(oriented)
    if flattened:
        canvas = Image.new("RGB", oriented.size, WHITE)
        rgba = oriented.convert("RGBA")
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        rgb = canvas
    else:
        rgb = oriented.convert("RGB")
    if max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=quality, optimize=True)  # no exif=, no xmp=: all dropped
    return ProcessedImage(
        out.getvalue(),
        rgb.width,
        rgb.height,
        source_format,
        source_width,
        source_height,
        flattened,
    )


def _has_alpha(image: Image.Image) -> bool:
    if image.mode in ("RGBA", "LA", "PA"):
        return True
    return image.mode == "P" and "transparency" in image.info
