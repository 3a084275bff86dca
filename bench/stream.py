"""What a user experiences while ONE reply streams in: Telegram calls, edit rate and delays.

The real bot (`BotRuntime`, default `Settings` edit intervals: 1 s in private chats, 3 s in
groups) polls the in-process Telegram Bot API emulator (flood limits on, every answer delayed
by 40 ms to model Telegram's round trip) and calls the in-process OpenAI emulator, with a fresh
SQLite database in a temporary directory. Everything runs on 127.0.0.1; no network.

The model streams ~600 o200k_base tokens at 50 tokens/s after 300 ms to the first token (about
12 s of streaming). Two scenarios, each with fresh emulators, database and bot:

- ``private``: a user writes to the bot in a private chat;
- ``group``: a user mentions ``@memory_test_bot`` in a supergroup (negative chat id).

Measured per scenario (all times on the ``time.monotonic()`` clock that the Bot API emulator
uses for ``calls[].at``; ``at`` is taken when the answer leaves, i.e. after the 40 ms latency):

- Telegram calls made for the reply: ``sendMessage``, ``editMessageText``, ``sendChatAction``,
  ``sendMessageDraft`` (every attempt, whatever its status) and their total;
- edits per second over the stream: successful ``editMessageText``/``sendMessageDraft`` calls
  answered between the model's first and last token, divided by that time;
- 429 answers the bot received from the emulator for this chat;
- model first token → first visible text (first successful ``sendMessage``/``sendMessageDraft``);
  the model's token times are recorded exactly when the OpenAI emulator emits each chunk;
- model last token → final edit (the last successful ``sendMessage``/``editMessageText``);
- total turn time: user message queued → final edit;
- whether the text the user finally sees equals the model's output (must be True).

Timings depend on the machine; nothing here asserts on them.

Run from the project root::

    python -m bench.stream                 # full run, ~30 s
    python -m bench.stream --smoke         # ~40-token reply at high speed, a few seconds
    python -m bench.stream --json out.json # also write the results as JSON
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import bpe_openai

from bot.config import Settings
from bot.telegram.app import BotRuntime
from emulators.bot_api import ApiCall, BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from emulators.openai_stream import Pacer

COUNTED_METHODS = ("sendMessage", "editMessageText", "sendChatAction", "sendMessageDraft")
VISIBLE_FIRST = ("sendMessage", "sendMessageDraft")  # calls that can show text first
LIVE_UPDATES = ("editMessageText", "sendMessageDraft")  # calls that update text mid-stream
FINAL_METHODS = ("sendMessage", "editMessageText")  # calls that leave a real message
PRIVATE_CHAT_ID = 424242
GROUP_CHAT_ID = -1001234567890
BOT_USERNAME = "memory_test_bot"
DESCRIPTION = "What a user experiences while one reply streams in (see the module docstring)."
SETTLE_TIMEOUT = 60.0  # seconds after the model's last token to wait for the final text

SENTENCES = (
    "Streaming a reply token by token feels fast, but every visible change costs a call.",
    "Telegram counts those calls per chat, and a busy group has a much smaller budget.",
    "The bot therefore batches new text and edits the same message at a steady pace.",
    "When Telegram answers with 429, the bot waits as told and sends the newest text.",
    "Users mostly care about two moments: when the first words appear and when it is done.",
    "Between those moments, a few smooth updates are better than many jittery ones.",
    "A round trip to Telegram takes tens of milliseconds, so calls are never free.",
    "The final edit must show exactly what the model wrote, with nothing lost or doubled.",
)


@dataclass(frozen=True)
class Workload:
    """The model's reply and Telegram's latency for one benchmark run."""

    name: str
    target_tokens: int
    tokens_per_second: float
    first_token_delay: float
    latency: float = 0.04


FULL = Workload("full", target_tokens=600, tokens_per_second=50.0, first_token_delay=0.3)
SMOKE = Workload("smoke", target_tokens=40, tokens_per_second=2000.0, first_token_delay=0.02)


@dataclass(frozen=True)
class ModelReply:
    """The scripted model output and how it is streamed."""

    text: str
    tokens: int
    chunk_chars: int
    chunks: int
    chunk_delay: float
    first_token_delay: float

    @property
    def nominal_stream_seconds(self) -> float:
        return self.chunk_delay * (self.chunks - 1)

    def reply(self) -> Reply:
        return Reply(
            text=self.text,
            chunk_chars=self.chunk_chars,
            first_token_delay=self.first_token_delay,
            chunk_delay=self.chunk_delay,
        )


@dataclass(frozen=True)
class Scenario:
    name: str
    chat_id: int
    chat_type: str
    prompt: str


SCENARIOS = (
    Scenario("private", PRIVATE_CHAT_ID, "private", "Tell me how streaming replies work."),
    Scenario("group", GROUP_CHAT_ID, "supergroup", f"@{BOT_USERNAME} tell me how streaming works."),
)


def count_tokens(text: str) -> int:
    """o200k_base tokens in ``text``."""
    return len(bpe_openai.get_encoding("o200k_base").encode_ordinary(text))


def build_model_reply(workload: Workload) -> ModelReply:
    """Plain prose (no Markdown) of about ``target_tokens`` tokens, chunked ~1 token per chunk,
    paced so that all tokens stream at ``tokens_per_second``."""
    paragraphs: list[str] = []
    sentences: list[str] = []
    index = 0
    while True:
        sentences.append(SENTENCES[index % len(SENTENCES)])
        index += 1
        if len(sentences) == 4:
            paragraphs.append(" ".join(sentences))
            sentences = []
        text = "\n\n".join([*paragraphs, " ".join(sentences)] if sentences else paragraphs)
        if count_tokens(text) >= workload.target_tokens:
            break
    while True:  # drop trailing words while the target is still reached
        shorter = text.rsplit(" ", 1)[0]
        if shorter == text or count_tokens(shorter) < workload.target_tokens:
            break
        text = shorter
    tokens = count_tokens(text)
    chunk_chars = max(1, round(len(text) / tokens))
    chunks = math.ceil(len(text) / chunk_chars)
    stream_seconds = tokens / workload.tokens_per_second
    chunk_delay = stream_seconds / max(1, chunks - 1)
    return ModelReply(text, tokens, chunk_chars, chunks, chunk_delay, workload.first_token_delay)


class TokenClock(Pacer):
    """The OpenAI emulator's pacer, noting when each streamed chunk is emitted."""

    def __init__(self) -> None:
        super().__init__()
        self.marks: list[float] = []

    async def sleep(self, seconds: float) -> None:
        await super().sleep(seconds)
        self.marks.append(time.monotonic())  # the chunk is written right after this


class TimedOpenAIEmulator(OpenAIEmulator):
    """The OpenAI emulator with exact token emission times (``time.monotonic()``)."""

    clock: TokenClock

    async def start(self, port: int = 0) -> None:
        await super().start(port)
        self.clock = TokenClock()
        self._pacer = self.clock  # read per request; also what stop() signals

    async def __aenter__(self) -> TimedOpenAIEmulator:
        await self.start()
        return self


def make_settings(telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str) -> Settings:
    """Settings like ``tests/conftest.py`` builds them, keeping the default edit intervals."""
    values: dict[str, Any] = {
        "telegram_bot_token": telegram.token,
        "telegram_base_url": telegram.base_url.removesuffix("/bot"),
        "openai_base_url": model.base_url,
        "openai_api_key": "sk-test-key",
        "model": "gpt-4o-mini",
        "database_url": database_url,
        "system_prompt": "You are a test assistant.",
        "openai_timeout": 5.0,
        "log_level": "DEBUG",
    }
    return Settings(_env_file=None, **values)


def _chat_calls(telegram: BotAPIEmulator, chat_id: int) -> list[ApiCall]:
    return [c for c in telegram.calls if c.params.get("chat_id") == chat_id]


def _first_at(calls: Sequence[ApiCall], methods: Sequence[str], *, last: bool = False) -> ApiCall:
    matching = [c for c in calls if c.method in methods and c.status == 200]
    if not matching:
        raise LookupError(f"no successful {'/'.join(methods)} call")
    return max(matching, key=lambda c: c.at) if last else min(matching, key=lambda c: c.at)


def _shown_text(telegram: BotAPIEmulator, chat_id: int) -> str:
    return "\n\n".join(m.text for m in telegram.bot_messages(chat_id))


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


async def run_scenario(
    scenario: Scenario, model_reply: ModelReply, latency: float
) -> dict[str, Any]:
    """One reply in one chat, with fresh emulators, database and bot; returns its metrics."""
    expected = model_reply.text.strip()
    with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
        database_url = f"sqlite+aiosqlite:///{Path(tmp) / 'bot.db'}"
        async with (
            BotAPIEmulator(bot_username=BOT_USERNAME, latency=latency) as telegram,
            TimedOpenAIEmulator() as model,
        ):
            settings = make_settings(telegram, model, database_url)
            model.enqueue(model_reply.reply())
            interval = (
                settings.edit_interval
                if scenario.chat_type == "private"
                else settings.group_edit_interval
            )
            async with BotRuntime(settings):
                await telegram.wait_for(lambda: telegram.state.active_polls > 0, timeout=10)
                sent_at = time.monotonic()
                telegram.send_text(
                    scenario.chat_id,
                    scenario.prompt,
                    chat_type=scenario.chat_type,
                    chat_title=None if scenario.chat_type == "private" else "Bench group",
                )
                budget = model_reply.first_token_delay + model_reply.nominal_stream_seconds
                with contextlib.suppress(AssertionError):  # reported below as a mismatch
                    await telegram.wait_for(
                        lambda: _shown_text(telegram, scenario.chat_id) == expected,
                        timeout=budget + SETTLE_TIMEOUT,
                    )
            # The runtime has stopped: the turn and all its Telegram calls are finished.
            marks = model.clock.marks
            request_wall = model.requests[0].at if model.requests else None
            calls = _chat_calls(telegram, scenario.chat_id)
            shown = _shown_text(telegram, scenario.chat_id)
            messages = telegram.bot_messages(scenario.chat_id)
    return _metrics(scenario, interval, calls, marks, sent_at, request_wall, shown, expected) | {
        "messages": len(messages),
        "visible_versions": sum(len(m.edits) for m in messages),
    }


def _metrics(
    scenario: Scenario,
    interval: float,
    calls: list[ApiCall],
    marks: list[float],
    sent_at: float,
    request_wall: float | None,
    shown: str,
    expected: str,
) -> dict[str, Any]:
    counts = {m: sum(1 for c in calls if c.method == m) for m in COUNTED_METHODS}
    ok_counts = {m: sum(1 for c in calls if c.method == m and c.status == 200) for m in counts}
    first_token = marks[0] if marks else None
    last_token = marks[-1] if marks else None
    stream_s = (
        last_token - first_token if first_token is not None and last_token is not None else None
    )
    first_visible: ApiCall | None = None
    final_edit: ApiCall | None = None
    with contextlib.suppress(LookupError):
        first_visible = _first_at(calls, VISIBLE_FIRST)
    with contextlib.suppress(LookupError):
        final_edit = _first_at(calls, FINAL_METHODS, last=True)
    live = [
        c
        for c in calls
        if c.method in LIVE_UPDATES
        and c.status == 200
        and first_token is not None
        and last_token is not None
        and first_token <= c.at <= last_token
    ]
    # RecordedRequest.at is wall-clock time; shift it onto the monotonic clock for this one.
    request_at = (
        request_wall - (time.time() - time.monotonic()) if request_wall is not None else None
    )
    return {
        "scenario": scenario.name,
        "chat_type": scenario.chat_type,
        "chat_id": scenario.chat_id,
        "edit_interval_s": interval,
        "calls": {**counts, "total": sum(counts.values())},
        "calls_ok": {**ok_counts, "total": sum(ok_counts.values())},
        "other_calls": sum(1 for c in calls if c.method not in COUNTED_METHODS),
        "http_429": sum(1 for c in calls if c.status == 429),
        "model_chunks_emitted": len(marks),
        "stream_s": _rounded(stream_s),
        "edits_per_s": _rounded(len(live) / stream_s) if stream_s else None,
        "message_to_model_request_s": _rounded(
            request_at - sent_at if request_at is not None else None
        ),
        "first_token_to_first_visible_s": _rounded(
            first_visible.at - first_token
            if first_visible is not None and first_token is not None
            else None
        ),
        "first_visible_via": first_visible.method if first_visible else None,
        "last_token_to_final_edit_s": _rounded(
            final_edit.at - last_token
            if final_edit is not None and last_token is not None
            else None
        ),
        "turn_s": _rounded(final_edit.at - sent_at if final_edit else None),
        "final_text_matches": shown == expected,
    }


def format_table(results: dict[str, Any]) -> str:
    """A readable table: one row per metric, one column per scenario."""
    scenarios: dict[str, dict[str, Any]] = results["scenarios"]
    names = list(scenarios)
    rows: list[tuple[str, list[str]]] = []

    def add(label: str, pick: Any) -> None:
        rows.append((label, [_cell(pick(scenarios[n])) for n in names]))

    add("edit interval (s)", lambda s: s["edit_interval_s"])
    for method in COUNTED_METHODS:
        add(f"calls: {method}", lambda s, m=method: s["calls"][m])
    add("calls: total", lambda s: s["calls"]["total"])
    add("429s received", lambda s: s["http_429"])
    add("edits/s over the stream", lambda s: s["edits_per_s"])
    add("model stream (s)", lambda s: s["stream_s"])
    add("first token -> first text (s)", lambda s: s["first_token_to_first_visible_s"])
    add("  first text via", lambda s: s["first_visible_via"])
    add("last token -> final edit (s)", lambda s: s["last_token_to_final_edit_s"])
    add("total turn (s)", lambda s: s["turn_s"])
    add("messages shown", lambda s: s["messages"])
    add("final text == model output", lambda s: s["final_text_matches"])
    width = max(len(label) for label, _ in rows)
    cols = [max(len(n), *(len(r[1][i]) for r in rows)) for i, n in enumerate(names)]
    header = " | ".join([" " * width, *(n.rjust(w) for n, w in zip(names, cols, strict=True))])
    lines = [header, "-" * len(header)]
    for label, cells in rows:
        lines.append(
            " | ".join(
                [label.ljust(width), *(c.rjust(w) for c, w in zip(cells, cols, strict=True))]
            )
        )
    model = results["model"]
    intro = (
        f"workload {results['workload']['name']}: {model['tokens']} o200k tokens "
        f"({model['chars']} chars, {model['chunks']} chunks of {model['chunk_chars']} chars, "
        f"first token after {model['first_token_delay_s']} s, {model['chunk_delay_s']:.4f} s "
        f"between chunks = {model['nominal_stream_s']:.2f} s stream), "
        f"Telegram latency {results['workload']['latency']} s, flood limits on"
    )
    return "\n".join([intro, "", *lines])


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


async def main(
    *, smoke: bool = False, json_path: Path | None = None, echo: bool = True
) -> dict[str, Any]:
    """Run both scenarios; print the table and JSON (``echo``), write JSON to ``json_path``."""
    workload = SMOKE if smoke else FULL
    model_reply = build_model_reply(workload)
    if echo:
        print(f"model reply: {model_reply.tokens} o200k_base tokens", flush=True)
    scenarios: dict[str, dict[str, Any]] = {}
    for scenario in SCENARIOS:
        scenarios[scenario.name] = await run_scenario(scenario, model_reply, workload.latency)
    results: dict[str, Any] = {
        "workload": asdict(workload),
        "model": {
            "tokens": model_reply.tokens,
            "chars": len(model_reply.text),
            "chunk_chars": model_reply.chunk_chars,
            "chunks": model_reply.chunks,
            "chunk_delay_s": model_reply.chunk_delay,
            "first_token_delay_s": model_reply.first_token_delay,
            "nominal_stream_s": model_reply.nominal_stream_seconds,
        },
        "scenarios": scenarios,
    }
    if echo:
        print(format_table(results))
        print()
        print(json.dumps(results, indent=2))
    if json_path is not None:
        text = json.dumps(results, indent=2) + "\n"
        await asyncio.to_thread(json_path.write_text, text, encoding="utf-8")
    return results


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.stream", description=DESCRIPTION)
    parser.add_argument("--smoke", action="store_true", help="tiny fast reply (a few seconds)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    args = parser.parse_args(argv)
    results = asyncio.run(main(smoke=args.smoke, json_path=args.json))
    return 0 if all(s["final_text_matches"] for s in results["scenarios"].values()) else 1


if __name__ == "__main__":
    sys.exit(cli())
