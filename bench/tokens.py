"""Figure 4: the bot's token counter: speed, and agreement with the model server's usage."""

from __future__ import annotations

import random
import time
from typing import Any

from bot.llm.tokens import REPLY_PRIMING_TOKENS, TokenCounter
from bot.values import Role
from emulators.openai_tokens import count_prompt_tokens

MODEL = "gpt-4o-mini"
SAMPLES = (
    "How do I reverse a list in Python without copying it?",
    "def fib(n: int) -> int:\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
    "Привет! Как дела? Расскажи, пожалуйста, про историю Санкт-Петербурга.",
    "東京の天気はどうですか？明日は雨が降りますか。",
    "Emoji test 🎉🚀👍🏽 and flags 🇩🇪🇯🇵 in one line, plus ZWJ 👩‍👩‍👧.",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01' ORDER BY id DESC LIMIT 10;",
    "Numbers 3.14159 2.71828 1,000,000 0xDEADBEEF 1e-9 and dates 2026-11-23T10:00:00Z.",
    "  Lots   of\twhitespace \n\n\n and <|endoftext|> markers   that are plain text.  ",
    "Ünïcödé àccents, Ελληνικά, עברית, العربية, हिन्दी mixed in one message.",
    "**Markdown** _italic_ `code` [link](https://example.com) > quote\n- item\n- item",
)


def corpus(prompts: int, seed: int = 9) -> list[list[dict[str, str]]]:
    """``prompts`` chat prompts: a system message and 1-9 turns mixing the samples."""
    rng = random.Random(seed)
    result = []
    for _ in range(prompts):
        messages = [{"role": Role.SYSTEM.value, "content": "You are a helpful assistant."}]
        for turn in range(rng.randint(1, 9)):
            role = Role.USER if turn % 2 == 0 else Role.ASSISTANT
            parts = rng.sample(SAMPLES, rng.randint(1, 3))
            messages.append({"role": role.value, "content": " ".join(parts) * rng.randint(1, 4)})
        result.append(messages)
    return result


def bot_count(counter: TokenCounter, messages: list[dict[str, str]]) -> int:
    """The whole prompt as the bot counts it (as bot.prompt.fit does: reply priming included)."""
    return REPLY_PRIMING_TOKENS + sum(
        counter.count_message(m["role"], m["content"]) for m in messages
    )


def token_counting(prompts: int, repeat: int) -> dict[str, Any]:
    """Counter speed over the corpus, and exact agreement with the emulator's prompt_tokens."""
    counter = TokenCounter(MODEL)
    prompts_list = corpus(prompts)
    texts = [m["content"] for p in prompts_list for m in p]
    counter.count_text("warm up")
    started = time.perf_counter()
    tokens = sum(counter.count_text(t) for _ in range(repeat) for t in texts)
    elapsed = time.perf_counter() - started
    deviations = []
    for messages in prompts_list:
        ours = bot_count(counter, messages)
        server = count_prompt_tokens(messages)
        deviations.append(abs(ours - server) / server)
    return {
        "model": MODEL,
        "exact_encoding": counter.exact,
        "tokens_counted": tokens,
        "tokens_per_s": round(tokens / elapsed) if elapsed else None,
        "prompts_compared": len(prompts_list),
        "exact_match_pct": round(100 * sum(d == 0 for d in deviations) / len(deviations), 2),
        "max_deviation_pct": round(100 * max(deviations), 3),
    }
