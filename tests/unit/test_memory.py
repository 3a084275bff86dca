"""build_prompt: the system prompt, the new message and the newest history that fits."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterable, Sequence

import bpe_openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.llm.tokens import TokenCounter
from bot.llm.types import ChatMessage
from bot.prompt.fit import MessageTooLong, Prompt, build_prompt
from bot.values import HistoryItem

MODEL = "gpt-4o-mini"
COUNTER = TokenCounter(MODEL)
O200K = bpe_openai.get_encoding("o200k_base")
SYSTEM = "You are a helpful assistant in a Telegram chat. Answer concisely."


def cookbook_tokens(messages: Iterable[ChatMessage]) -> int:
    """The OpenAI cookbook count, computed independently of bot.llm.tokens."""
    total = 3  # every reply is primed with <|start|>assistant<|message|>
    for message in messages:
        total += 3 + len(O200K.encode(str(message.role))) + len(O200K.encode(message.content))
    return total


def item(id_: int, role: str, content: str) -> HistoryItem:
    return HistoryItem(id_, role, content, COUNTER.count_message(role, content))


def system_tokens(prompt: str = SYSTEM) -> int:
    return COUNTER.count_message("system", prompt)


class History:
    """Async history, newest first, that records how many items were pulled from it."""

    def __init__(self, items: Iterable[HistoryItem]) -> None:
        self._items = items
        self.pulled = 0

    def __aiter__(self) -> AsyncIterator[HistoryItem]:
        return self._generate()

    async def _generate(self) -> AsyncIterator[HistoryItem]:
        for history_item in self._items:
            self.pulled += 1
            yield history_item


def conversation(turns: int) -> list[HistoryItem]:
    """user/assistant pairs, oldest first, each message a different length."""
    items: list[HistoryItem] = []
    for turn in range(1, turns + 1):
        items.append(item(2 * turn - 1, "user", f"question {turn}: " + "why? " * turn))
        items.append(item(2 * turn, "assistant", f"answer {turn}: " + "because. " * turn))
    return items


NEW = item(1000, "user", "And what about tomorrow?")


async def build(
    history: Sequence[HistoryItem] | History,
    budget: int,
    *,
    system_prompt: str = SYSTEM,
    new_message: HistoryItem = NEW,
    summary: str = "",
) -> Prompt:
    source = history if isinstance(history, History) else History(reversed(history))
    return await build_prompt(
        system_prompt=system_prompt,
        new_message=new_message,
        history=source,
        budget=budget,
        counter=COUNTER,
        summary=summary,
    )


def as_messages(items: Iterable[HistoryItem]) -> list[ChatMessage]:
    return [ChatMessage(i.role, i.content) for i in items]


def base_cost(system_prompt: str = SYSTEM) -> int:
    """Priming + system message + the new message."""
    return 3 + (system_tokens(system_prompt) if system_prompt else 0) + NEW.tokens


async def test_system_prompt_and_new_message_are_always_sent() -> None:
    prompt = await build([], budget=base_cost())

    assert list(prompt.messages) == [
        ChatMessage("system", SYSTEM),
        ChatMessage("user", NEW.content),
    ]
    assert prompt.history_kept == 0
    assert prompt.tokens == base_cost()


async def test_a_history_that_fits_is_sent_whole_in_chronological_order() -> None:
    history = conversation(3)

    prompt = await build(history, budget=100_000)

    assert list(prompt.messages) == [
        ChatMessage("system", SYSTEM),
        *as_messages(history),
        ChatMessage("user", NEW.content),
    ]
    assert prompt.history_kept == 6


async def test_a_history_read_to_its_end_reports_every_unsummarized_token() -> None:
    history = conversation(3)[1:]  # opens with an answer: left out, still unsummarized

    prompt = await build(history, budget=100_000)

    assert prompt.history_kept == 4
    assert prompt.unsummarized_tokens == NEW.tokens + sum(i.tokens for i in history)


async def test_a_trimmed_history_reports_no_unsummarized_total() -> None:
    history = conversation(3)
    budget = base_cost() + sum(i.tokens for i in history) - 1

    prompt = await build(history, budget=budget)

    assert prompt.history_kept < 6
    assert prompt.unsummarized_tokens is None


async def test_the_oldest_messages_are_dropped_first_and_whole() -> None:
    history = conversation(3)  # u1 a1 u2 a2 u3 a3
    newest_four = history[2:]
    budget = base_cost() + sum(i.tokens for i in newest_four) + history[1].tokens - 1

    prompt = await build(history, budget=budget)

    assert list(prompt.messages[1:-1]) == as_messages(newest_four)
    assert prompt.history_kept == 4
    assert prompt.tokens <= budget
    assert all(m.content for m in prompt.messages)  # nothing truncated


async def test_reading_stops_at_the_first_message_that_does_not_fit() -> None:
    old_small = item(1, "user", "hi")
    big = item(2, "assistant", "word " * 500)
    newest_small = item(3, "user", "ok")
    history = History([newest_small, big, old_small])  # newest first
    budget = base_cost() + newest_small.tokens + old_small.tokens  # room for both small ones

    prompt = await build(history, budget=budget)

    assert list(prompt.messages[1:-1]) == as_messages([newest_small])
    assert history.pulled == 2  # the big one was read, the older one never


async def test_a_long_history_is_not_read_past_the_budget() -> None:
    def endless() -> Iterable[HistoryItem]:
        for n in itertools.count():
            yield item(n, "assistant" if n % 2 == 0 else "user", f"message number {n}")

    history = History(endless())
    one = item(0, "assistant", "message number 0").tokens
    budget = base_cost() + 10 * one

    prompt = await build(history, budget=budget)

    assert 1 <= prompt.history_kept <= 10
    assert history.pulled <= 11


async def test_a_leading_assistant_message_is_dropped() -> None:
    history = conversation(2)  # u1 a1 u2 a2
    kept_candidates = history[1:]  # a1 u2 a2 fit, u1 does not
    budget = base_cost() + sum(i.tokens for i in kept_candidates)

    prompt = await build(history, budget=budget)

    assert list(prompt.messages[1:-1]) == as_messages(history[2:])
    assert prompt.history_kept == 2
    assert prompt.tokens == cookbook_tokens(prompt.messages)


async def test_consecutive_leading_assistant_messages_are_all_dropped() -> None:
    history = [
        item(1, "user", "first"),
        item(2, "assistant", "part one"),
        item(3, "assistant", "part two"),
        item(4, "user", "second"),
        item(5, "assistant", "reply"),
    ]
    budget = base_cost() + sum(i.tokens for i in history[1:])

    prompt = await build(history, budget=budget)

    assert list(prompt.messages[1:-1]) == as_messages(history[3:])
    assert prompt.tokens == cookbook_tokens(prompt.messages)


async def test_an_empty_system_prompt_sends_no_system_message() -> None:
    history = conversation(1)

    prompt = await build(history, budget=10_000, system_prompt="")

    assert [m.role for m in prompt.messages] == ["user", "assistant", "user"]
    assert prompt.tokens == cookbook_tokens(prompt.messages)


async def test_a_new_message_that_fits_exactly_is_accepted() -> None:
    prompt = await build(conversation(1), budget=base_cost())

    assert prompt.tokens == base_cost()
    assert prompt.history_kept == 0


async def test_a_new_message_that_alone_does_not_fit_raises_message_too_long() -> None:
    huge = item(1000, "user", "lorem ipsum " * 300)
    budget = 3 + system_tokens() + huge.tokens - 1
    history = History(reversed(conversation(2)))

    with pytest.raises(MessageTooLong) as info:
        await build(history, budget=budget, new_message=huge)

    assert info.value.tokens == huge.tokens
    assert info.value.limit == huge.tokens - 1  # the budget minus priming and system prompt
    assert history.pulled == 0


async def test_message_too_long_limit_without_a_system_prompt() -> None:
    huge = item(1000, "user", "lorem ipsum " * 300)

    with pytest.raises(MessageTooLong) as info:
        await build([], budget=100, system_prompt="", new_message=huge)

    assert (info.value.tokens, info.value.limit) == (huge.tokens, 100 - 3)


@pytest.mark.parametrize("turns", [0, 1, 4])
@pytest.mark.parametrize("system_prompt", [SYSTEM, "", "Ты — полезный бот. 日本語で答えて。"])
async def test_prompt_tokens_equal_the_cookbook_count_of_the_messages(
    turns: int, system_prompt: str
) -> None:
    prompt = await build(conversation(turns), budget=100_000, system_prompt=system_prompt)

    assert prompt.tokens == cookbook_tokens(prompt.messages)


contents = st.text(alphabet=st.sampled_from("ab Я中🦜\n.,"), max_size=40)
roles = st.sampled_from(["user", "assistant"])


@settings(max_examples=75, deadline=None)
@given(
    history=st.lists(st.tuples(roles, contents), max_size=12),
    slack=st.integers(min_value=0, max_value=300),
)
def test_any_prompt_is_a_newest_suffix_within_budget_counted_by_the_cookbook(
    history: list[tuple[str, str]], slack: int
) -> None:
    items = [item(n, role, content) for n, (role, content) in enumerate(history)]
    budget = base_cost() + slack

    prompt = asyncio.run(build(items, budget=budget))

    # reference: take the newest items while they fit, then drop leading assistant messages
    room, fitting = budget - base_cost(), 0
    for newer in reversed(items):
        if newer.tokens > room:
            break
        room -= newer.tokens
        fitting += 1
    expected = items[len(items) - fitting :]
    while expected and expected[0].role == "assistant":
        expected.pop(0)
    assert list(prompt.messages[1:-1]) == as_messages(expected)
    assert prompt.history_kept == len(expected)
    assert prompt.tokens <= budget
    assert prompt.tokens == cookbook_tokens(prompt.messages)


# --- the rolling summary ------------------------------------------------------------------------


async def test_the_summary_rides_in_the_one_system_message() -> None:
    prompt = await build(conversation(2), 10_000, summary="Alice likes tea.")
    first = prompt.messages[0]
    assert first.role == "system"
    assert first.content == f"{SYSTEM}\n\nSummary of the earlier conversation:\nAlice likes tea."
    assert [m.role for m in prompt.messages].count("system") == 1
    assert prompt.with_summary and prompt.history_kept == 4
    assert prompt.tokens == cookbook_tokens(prompt.messages)


async def test_the_summary_alone_is_the_system_message_without_a_system_prompt() -> None:
    prompt = await build([], 10_000, system_prompt="", summary="Alice likes tea.")
    assert prompt.messages[0] == ChatMessage(
        "system", "Summary of the earlier conversation:\nAlice likes tea."
    )
    assert prompt.tokens == cookbook_tokens(prompt.messages)


async def test_the_summary_takes_its_room_from_the_history() -> None:
    without = await build(conversation(30), 600)
    with_summary = await build(conversation(30), 600, summary="word " * 100)
    assert with_summary.history_kept < without.history_kept
    assert with_summary.tokens <= 600


async def test_a_summary_that_leaves_no_room_for_the_new_message_is_dropped() -> None:
    budget = base_cost() + 5
    prompt = await build([], budget, summary="word " * 100)
    assert not prompt.with_summary
    assert prompt.messages[0].content == SYSTEM
