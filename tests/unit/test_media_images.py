"""Image decoding, downscaling, metadata stripping and token costs (images, image_tokens)."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bot.llm.image_tokens import image_tokens, patches, tiles
from bot.media.images import process_image
from bot.media.types import BOMB, CORRUPT, ImageError
from emulators import media_samples as samples
from emulators.openai_images import tokens_for


def decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "GIF", "HEIF"])
def test_each_format_becomes_a_jpeg_of_the_same_size(fmt: str) -> None:
    result = process_image(samples.image_bytes(320, 200, fmt))
    assert (result.width, result.height, result.mime) == (320, 200, "image/jpeg")
    assert result.source_format == fmt
    assert decoded(result.data).format == "JPEG"


def test_long_side_is_downscaled_to_2048_keeping_the_aspect_ratio() -> None:
    result = process_image(samples.image_bytes(4000, 3000))
    assert (result.width, result.height) == (2048, 1536)
    assert (result.source_width, result.source_height) == (4000, 3000)
    assert decoded(result.data).size == (2048, 1536)


def test_exif_orientation_is_applied_then_every_exif_tag_dropped() -> None:
    source = samples.jpeg_with_exif(400, 200, orientation=6)
    assert decoded(source).getexif()  # the sample carries EXIF (orientation, make, GPS)
    result = process_image(source)
    assert (result.width, result.height) == (200, 400)  # rotated upright
    image = decoded(result.data)
    assert not image.getexif()
    assert "exif" not in image.info and "xmp" not in image.info


def test_gif_gives_its_first_frame() -> None:
    result = process_image(samples.animated_gif())
    r, _, b = decoded(result.data).convert("RGB").getpixel((32, 32))  # type: ignore[misc]
    assert r > 200 and b < 60  # red, the first frame; the second is blue


def test_transparency_is_flattened_onto_white() -> None:
    result = process_image(samples.image_bytes(50, 50, "PNG", color=(0, 0, 0, 0), mode="RGBA"))
    assert result.flattened
    assert min(decoded(result.data).convert("RGB").getpixel((25, 25))) > 245  # type: ignore[arg-type]


def test_opaque_png_is_not_flattened() -> None:
    assert not process_image(samples.image_bytes(50, 50, "PNG")).flattened


def test_decompression_bomb_header_is_refused_before_decoding() -> None:
    with pytest.raises(ImageError) as caught:
        process_image(samples.png_bomb())
    assert caught.value.code == BOMB


def test_more_pixels_than_the_setting_is_a_bomb() -> None:
    with pytest.raises(ImageError) as caught:
        process_image(samples.image_bytes(3000, 3000), max_pixels=1_000_000)
    assert caught.value.code == BOMB
    assert caught.value.values["pixels"] == 9_000_000


def test_truncated_jpeg_is_corrupt() -> None:
    data = samples.image_bytes(800, 600, quality=95)
    with pytest.raises(ImageError) as caught:
        process_image(data[: len(data) // 2])
    assert caught.value.code == CORRUPT


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"x" * 50])
def test_garbage_is_corrupt(data: bytes) -> None:
    with pytest.raises(ImageError) as caught:
        process_image(data)
    assert caught.value.code == CORRUPT


# --- token costs: OpenAI's worked examples ("Images and vision" guide, "Calculating costs")


def test_tile_model_examples() -> None:
    assert image_tokens("gpt-4o", 1024, 1024, "high") == 765  # 4 tiles
    assert image_tokens("gpt-4o", 2048, 4096, "high") == 1105  # 6 tiles
    assert image_tokens("gpt-4o", 4096, 8192, "low") == 85
    assert tiles(1024, 1024) == 4 and tiles(2048, 4096) == 6


def test_gpt_4o_mini_uses_its_larger_constants() -> None:
    assert image_tokens("gpt-4o-mini", 1024, 1024, "high") == 2833 + 4 * 5667
    assert image_tokens("gpt-4o-mini", 1024, 1024, "low") == 2833
    assert image_tokens("openai/gpt-4o-mini-2024-07-18", 10, 10, "low") == 2833


def test_patch_model_examples() -> None:
    assert patches(1024, 1024) == 1024
    assert patches(1800, 2400) == 1452  # scaled to 1056×1408
    assert image_tokens("gpt-4.1-mini", 1024, 1024) == 1659  # 1024 × 1.62, rounded up
    assert image_tokens("o4-mini", 1800, 2400) == 2498  # 1452 × 1.72, rounded up
    assert patches(4000, 4000) == 1521  # scaled to 39×39 patches, under the 1536 cap
    assert image_tokens("gpt-4.1-nano", 4000, 4000) == 3742  # 1521 × 2.46, rounded up


def test_auto_counts_as_high_and_unknown_models_as_gpt_4o() -> None:
    assert image_tokens("gpt-4o", 1024, 1024, "auto") == 765
    assert image_tokens("llava-1.6", 1024, 1024, "auto") == 765


@pytest.mark.parametrize(
    ("model", "width", "height", "detail"),
    [
        ("gpt-4o", 300, 5000, "high"),
        ("gpt-4o-mini", 2048, 1536, "auto"),
        ("gpt-4.1-mini", 3000, 500, "high"),
        ("o4-mini", 777, 333, "low"),
        ("gpt-5-nano", 2048, 2048, "high"),
    ],
)
def test_bot_and_emulator_agree(model: str, width: int, height: int, detail: str) -> None:
    """The emulator's independent implementation of the same rules gives the same counts."""
    assert image_tokens(model, width, height, detail) == tokens_for(  # type: ignore[arg-type]
        model, width, height, detail
    )
