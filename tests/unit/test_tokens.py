"""TokenCounter: exact counts for OpenAI models, a conservative estimate for the others."""

from __future__ import annotations

import math

import bpe_openai
import pytest

from bot.llm.tokens import TokenCounter

O200K = bpe_openai.get_encoding("o200k_base")
CL100K = bpe_openai.get_encoding("cl100k_base")

ENGLISH = (
    "The quick brown fox jumps over the lazy dog. Telegram bots answer questions, remember "
    "the conversation, and stream their replies as they are written."
)
CYRILLIC = (
    "Съешь же ещё этих мягких французских булок, да выпей чаю. "
    "Бот отвечает на вопросы и помнит разговор."
)
CHINESE = "我能吞下玻璃而不伤身体。这个机器人会回答问题，并记住之前的对话内容。"
JAPANESE = "私はガラスを食べられます。それは私を傷つけません。"
KOREAN = "나는 유리를 먹을 수 있어요. 그래도 아프지 않아요."
MIXED = "Hi! Привет! 你好! ¿Qué tal? Ça va?"
SAMPLES = [ENGLISH, CYRILLIC, CHINESE, JAPANESE, KOREAN, MIXED]
SAMPLE_IDS = ["english", "cyrillic", "chinese", "japanese", "korean", "mixed"]


def estimate(text: str) -> int:
    """The documented estimate: o200k plus 25%, never below one token per 4 UTF-8 bytes."""
    return math.ceil(max(len(O200K.encode(text)) * 1.25, len(text.encode("utf-8")) / 4))


# --- exact counts -----------------------------------------------------------------------------


def test_cookbook_example_has_six_tokens_for_gpt_4() -> None:
    # OpenAI cookbook: cl100k_base encodes "tiktoken is great!" as 6 tokens
    assert TokenCounter("gpt-4").count_text("tiktoken is great!") == 6


@pytest.mark.parametrize("text", SAMPLES, ids=SAMPLE_IDS)
def test_gpt_4o_mini_counts_with_o200k(text: str) -> None:
    counter = TokenCounter("gpt-4o-mini")

    assert counter.exact
    assert counter.count_text(text) == len(O200K.encode(text))


@pytest.mark.parametrize("text", SAMPLES, ids=SAMPLE_IDS)
def test_gpt_4_counts_with_cl100k(text: str) -> None:
    counter = TokenCounter("gpt-4")

    assert counter.exact
    assert counter.count_text(text) == len(CL100K.encode(text))


def test_the_two_families_are_told_apart() -> None:
    # The Cyrillic sample costs about twice as much in cl100k as in o200k.
    assert len(O200K.encode(CYRILLIC)) < len(CL100K.encode(CYRILLIC))
    assert TokenCounter("gpt-4o").count_text(CYRILLIC) == len(O200K.encode(CYRILLIC))
    assert TokenCounter("gpt-4-turbo").count_text(CYRILLIC) == len(CL100K.encode(CYRILLIC))


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4o-2024-08-06",
        "chatgpt-4o-latest",
        "gpt-4.1-nano",
        "gpt-5",
        "o1-mini",
        "o3",
        "o4-mini",
        "openai/gpt-4o",
        "OpenAI/GPT-4o-Mini",
        "openrouter/openai/gpt-4o",
    ],
)
def test_o200k_models_with_or_without_a_provider_prefix(model: str) -> None:
    counter = TokenCounter(model)

    assert counter.exact
    assert counter.count_text(CYRILLIC) == len(O200K.encode(CYRILLIC))


@pytest.mark.parametrize(
    "model", ["gpt-4", "gpt-4-0613", "gpt-4-turbo", "gpt-3.5-turbo", "azure/gpt-35-turbo"]
)
def test_cl100k_models_with_or_without_a_provider_prefix(model: str) -> None:
    counter = TokenCounter(model)

    assert counter.exact
    assert counter.count_text(CYRILLIC) == len(CL100K.encode(CYRILLIC))


# --- the estimate for unknown models ----------------------------------------------------------


@pytest.mark.parametrize(
    "model", ["llama3.1:8b", "mistralai/Mistral-7B-Instruct-v0.3", "qwen2.5", "claude-3-haiku"]
)
def test_unknown_models_are_estimated_with_a_margin_over_o200k(model: str) -> None:
    counter = TokenCounter(model)

    assert not counter.exact
    assert counter.count_text("abc") == 2  # 1 o200k token, +25%, rounded up
    assert counter.count_text("Я") == 2
    assert counter.count_text("x" * 400) == 100  # the byte floor: 400 bytes / 4
    for sample in SAMPLES:
        assert counter.count_text(sample) == estimate(sample)


@pytest.mark.parametrize("text", SAMPLES, ids=SAMPLE_IDS)
def test_the_estimate_is_not_below_the_o200k_count(text: str) -> None:
    assert TokenCounter("some-local-model").count_text(text) >= len(O200K.encode(text))


@pytest.mark.parametrize(
    "text",
    [
        "def add(a: int, b: int) -> int:\n    return a + b\n\nprint(add(2, 3))\n",
        "3.14159265358979323846264338327950288419716939937510",
        "🦜🦩🦚🪿🫎",
        "龘靐齉爩鱻麤",
    ],
    ids=["python-code", "digits", "emoji", "rare-cjk"],
)
def test_the_estimate_is_not_below_the_o200k_count_for_code_digits_and_emoji(text: str) -> None:
    assert TokenCounter("some-local-model").count_text(text) >= len(O200K.encode(text))


# --- messages ---------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4", "local-model"])
def test_empty_text_is_zero_tokens(model: str) -> None:
    assert TokenCounter(model).count_text("") == 0


@pytest.mark.parametrize("role", ["system", "user", "assistant"])
@pytest.mark.parametrize("content", ["", "Hello!", CYRILLIC])
def test_a_message_costs_three_plus_its_role_plus_its_content(role: str, content: str) -> None:
    counter = TokenCounter("gpt-4o-mini")
    expected = 3 + len(O200K.encode(role)) + len(O200K.encode(content))

    assert counter.count_message(role, content) == expected


def test_a_named_message_costs_one_more_plus_the_name() -> None:
    counter = TokenCounter("gpt-4")
    name = "alice_1987"
    expected = 3 + len(CL100K.encode("user")) + len(CL100K.encode("hi there")) + 1
    expected += len(CL100K.encode(name))

    assert counter.count_message("user", "hi there", name=name) == expected
    assert counter.count_message("user", "hi there", name=name) > counter.count_message(
        "user", "hi there"
    )


def test_an_empty_name_adds_nothing() -> None:
    counter = TokenCounter("gpt-4o-mini")

    assert counter.count_message("user", "hi", name="") == counter.count_message("user", "hi")


def test_an_unknown_model_message_uses_the_estimate_for_role_and_content() -> None:
    counter = TokenCounter("local-model")

    assert counter.count_message("assistant", CYRILLIC) == 3 + 3 + estimate(CYRILLIC)


@pytest.mark.parametrize("model", ["gpt-4o-mini", "gpt-4", "llama-3.1-70b"])
def test_special_token_markers_are_counted_as_plain_text(model: str) -> None:
    text = "Ignore <|endoftext|> and <|im_start|>system please"
    counter = TokenCounter(model)
    expected = len(O200K.encode_ordinary(text)) if model != "gpt-4" else None
    if expected is None:
        expected = len(CL100K.encode_ordinary(text))
    counted = counter.count_text(text)
    assert counted == expected if counter.exact else counted >= expected


# --- cost -------------------------------------------------------------------------------------


@pytest.mark.parametrize("models", [("gpt-4o-mini", "gpt-4o"), ("llama-3.1-70b", "qwen2.5")])
def test_counters_share_one_encoding_per_vocabulary(models: tuple[str, str]) -> None:
    # bpe_openai builds a new encoding (~75 MB, ~80 ms) per get_encoding call: never per turn.
    first, second = (TokenCounter(m) for m in models)

    assert first._encoding is second._encoding
    assert first._encoding is TokenCounter(models[0])._encoding


def test_building_an_encoding_releases_the_loaders_vocabulary_tables() -> None:
    from bpe_openai import registry

    from bot.llm import tokens

    registry.voyage3_base()  # what importing bpe_openai leaves cached (~25 MB per table)
    tokens._encoding.cache_clear()
    tokens._encoding_for.cache_clear()

    counter = TokenCounter("gpt-4o")

    assert registry._load_mergeable_ranks.cache_info().currsize == 0
    assert all(f.cache_info().currsize == 0 for f in registry.ENCODING_CONSTRUCTORS.values())
    assert counter.count_text("still counts") == len(O200K.encode_ordinary("still counts"))
