"""Images in the prompt (bot/prompt/images.py through build_prompt): text-only models get the
text form; a tight budget turns old images into their text form before dropping messages."""

from __future__ import annotations

from collections.abc import AsyncIterator

from bot.llm.tokens import TokenCounter
from bot.parts import ImagePart, Part, TextPart, text_form
from bot.prompt.fit import Prompt, build_prompt
from bot.prompt.images import without_images
from bot.values import HistoryItem

COUNTER = TokenCounter("gpt-4o")  # 85 + 170 per tile


def photo(id_: int, caption: str) -> HistoryItem:
    parts: tuple[Part, ...] = COUNTER.counted(
        (
            ImagePart(b"jpeg", text=f"photo {id_}, 1024×768", width=1024, height=768),
            TextPart(caption),
        )
    )
    return HistoryItem(id_, "user", text_form(parts), COUNTER.count_content("user", parts), parts)


def said(id_: int, role: str, text: str) -> HistoryItem:
    return HistoryItem(id_, role, text, COUNTER.count_message(role, text))


async def newest_first(items: list[HistoryItem]) -> AsyncIterator[HistoryItem]:
    for item in reversed(items):
        yield item


def sent_images(content: object) -> int:
    return sum(isinstance(p, ImagePart) for p in content) if isinstance(content, tuple) else 0


async def test_a_text_only_model_gets_the_description_and_caption() -> None:
    new = photo(1, "What is this?")
    prompt = await build_prompt(
        system_prompt="",
        new_message=new,
        history=newest_first([]),
        budget=10_000,
        counter=COUNTER,
        vision=False,
    )
    [message] = prompt.messages
    assert message.content == (
        TextPart("[image: photo 1, 1024×768]", COUNTER.count_text("[image: photo 1, 1024×768]")),
        new.parts[1],
    )
    assert prompt.tokens < new.tokens - 700  # counted as text, not as a 765-token image


async def test_old_images_give_way_to_their_text_before_messages_go() -> None:
    history = [photo(1, "first"), said(2, "assistant", "A dog."), photo(3, "second")]
    history += [said(4, "assistant", "A cat.")]
    new = said(5, "user", "Which was cuter?")
    full = sum(item.tokens for item in history) + new.tokens + 3

    async def fit(budget: int) -> Prompt:
        return await build_prompt(
            system_prompt="",
            new_message=new,
            history=newest_first(history),
            budget=budget,
            counter=COUNTER,
        )

    # Room for everything but one image: the oldest one goes as text, nothing is dropped.
    prompt = await fit(full - 100)
    assert [sent_images(m.content) for m in prompt.messages] == [0, 0, 1, 0, 0]
    assert prompt.messages[0].content[0].text == "[image: photo 1, 1024×768]"  # type: ignore[union-attr]
    assert prompt.history_kept == 4 and prompt.tokens <= full - 100
    # Room for the text forms alone: every image as text, still nothing dropped.
    light = sum(without_images(i, COUNTER).tokens for i in history) + new.tokens + 3
    prompt = await fit(light)
    assert [sent_images(m.content) for m in prompt.messages] == [0, 0, 0, 0, 0]
    # Less still: whole messages go, oldest first (and no answer opens the prompt).
    prompt = await fit(light - 1)
    assert [m.role for m in prompt.messages] == ["user", "assistant", "user"]
    assert prompt.history_kept == 2


async def test_a_new_image_too_costly_for_the_budget_goes_at_low_detail() -> None:
    mini = TokenCounter("gpt-4o-mini")  # 2833 + 5667 per tile: 1024×768 costs 25,501
    parts: tuple[Part, ...] = mini.counted(
        (ImagePart(b"jpeg", text="photo, 1024×768", width=1024, height=768), TextPart("Hm?"))
    )
    new = HistoryItem(1, "user", text_form(parts), mini.count_content("user", parts), parts)
    prompt = await build_prompt(
        system_prompt="", new_message=new, history=newest_first([]), budget=15_000, counter=mini
    )
    [message] = prompt.messages
    assert isinstance(message.content, tuple)
    image = message.content[0]
    assert isinstance(image, ImagePart) and (image.detail, image.tokens) == ("low", 2833)
    assert prompt.tokens == new.tokens - 25_501 + 2833 + 3
