"""Parts as the content of each API mode (bot/media/prompt_parts.py)."""

from __future__ import annotations

import base64

from bot.media.prompt_parts import (
    chat_content,
    completions_text,
    data_url,
    prompt_tokens,
    responses_content,
    shed_images,
)
from bot.media.types import Part

BLOB = b"\xff\xd8\xff\xe0fake-jpeg"
IMAGE = Part(
    "image",
    "[Image: photo, 640×480]",
    token_count=765,
    text_tokens=9,
    data={"mime": "image/jpeg", "detail": "low", "image_tokens": 765},
    blob=BLOB,
)
CAPTION = Part("text", "What is this?", 4, 4, {"role": "caption"})
URL = "data:image/jpeg;base64," + base64.b64encode(BLOB).decode()


def test_data_url() -> None:
    assert data_url("image/png", b"\x00\x01") == "data:image/png;base64,AAE="


def test_chat_content_with_vision_is_typed_parts_in_order() -> None:
    assert chat_content([IMAGE, CAPTION], vision=True) == [
        {"type": "image_url", "image_url": {"url": URL, "detail": "low"}},
        {"type": "text", "text": "What is this?"},
    ]


def test_responses_content_with_vision() -> None:
    assert responses_content([IMAGE, CAPTION], vision=True) == [
        {"type": "input_image", "image_url": URL, "detail": "low"},
        {"type": "input_text", "text": "What is this?"},
    ]


def test_text_only_models_and_completions_get_the_text_forms() -> None:
    expected = "[Image: photo, 640×480]\n\nWhat is this?"
    assert chat_content([IMAGE, CAPTION], vision=False) == expected
    assert responses_content([IMAGE, CAPTION], vision=False) == expected
    assert completions_text([IMAGE, CAPTION]) == expected
    assert chat_content([CAPTION], vision=True) == "What is this?"  # no image: a plain string


def test_no_telegram_url_ever_reaches_the_content() -> None:
    content = str(chat_content([IMAGE, CAPTION], vision=True))
    assert "api.telegram.org" not in content and "/file/bot" not in content


def test_prompt_tokens_per_mode() -> None:
    assert prompt_tokens([IMAGE, CAPTION], vision=True) == 765 + 4
    assert prompt_tokens([IMAGE, CAPTION], vision=False) == 9 + 4


def test_old_images_give_way_to_their_text_first() -> None:
    history = [[IMAGE, CAPTION], [IMAGE], [CAPTION]]
    shed, saved = shed_images(history, excess=100)
    assert saved == 765 - 9
    assert [p.blob is None for p in shed[0]] == [True, True]  # the oldest image: text form
    assert shed[1][0].blob == BLOB  # the newer one kept
    assert chat_content(shed[0], vision=True) == "[Image: photo, 640×480]\n\nWhat is this?"
    shed_all, saved_all = shed_images(history, excess=10_000)
    assert saved_all == 2 * (765 - 9) and all(p.blob is None for m in shed_all for p in m)
    assert prompt_tokens(shed_all[1], vision=True) == 9
