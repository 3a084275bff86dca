"""``python -m bench``: what the bot adds on top of the model, at scale (see README, Benchmark).

Runs against the in-process emulators with realistic latencies (Telegram round trip 40 ms;
model 300 ms to the first token, then 50 tokens/s); the bot runs as ``python -m bot run`` in
a child process. Prints a table, and JSON to ``--json FILE``. ``--smoke`` runs tiny sizes in
seconds (used by the test suite; its numbers mean nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.harness import Latency, postgres_reachable
from bench.media import media
from bench.overhead import concurrency, history_length
from bench.report import format_table
from bench.scale import throughput
from bench.tokens import token_counting
from bench.tools import tool_turns


@dataclass(frozen=True)
class Plan:
    """Sizes of one run."""

    name: str
    latency: Latency
    concurrency: tuple[int, ...]
    history_sizes: tuple[int, ...]
    history_turns: int
    scale_chats: int
    token_prompts: int
    token_repeat: int
    media_turns: int  # photo turns, then as many PDF turns
    media_chats: int  # chats streaming while the big PDF is parsed
    media_pdf_mb: int
    media_rounds: int  # other chats' turns without, then with, big PDFs being read
    tool_chats: int = 5
    tool_rounds: int = 20


FULL = Plan(
    "full", Latency(), (1, 50, 200), (10, 10_000, 100_000), 12, 1_000, 400, 5, 20, 50, 19, 8
)
SMOKE = Plan(
    "smoke",
    Latency(first_token=0.02, tokens_per_second=1000.0, reply_tokens=10),
    (1, 3),
    (10, 200),
    2,
    5,
    20,
    1,
    2,
    2,
    1,
    1,
    tool_chats=1,
    tool_rounds=2,
)


async def run(plan: Plan, *, postgres: bool = True, profile: Path | None = None) -> dict[str, Any]:
    """Every figure of the plan, as one JSON-ready dict."""
    databases = ["sqlite"]
    skipped = None
    if postgres:
        skipped = await postgres_reachable()
        if skipped is None:
            databases.append("postgresql")
    else:
        skipped = "not requested (--no-postgres)"
    short = Latency(plan.latency.telegram, plan.latency.first_token, 1000.0, 10)
    results: dict[str, Any] = {
        "plan": json.loads(json.dumps(asdict(plan))),  # tuples as lists, as in the file
        "postgresql_skipped": skipped,
        "overhead": {},
        "overhead_no_flood_limits": {},
        "history": {},
    }
    for database in databases:
        results["overhead"][database] = {
            str(n): await concurrency(database, plan.latency, n) for n in plan.concurrency
        }
        largest = plan.concurrency[-1]
        results["overhead_no_flood_limits"][database] = {
            str(largest): await concurrency(
                database,
                plan.latency,
                largest,
                flood=False,
                profile=profile if database == "sqlite" else None,
            )
        }
        results["history"][database] = await history_length(
            database, short, list(plan.history_sizes), plan.history_turns
        )
    results["throughput"] = await throughput("sqlite", plan.latency, plan.scale_chats)
    results["tokens"] = token_counting(plan.token_prompts, plan.token_repeat)
    results["media"] = {
        database: await media(
            database,
            plan.latency,
            plan.media_turns,
            plan.media_chats,
            plan.media_pdf_mb,
            plan.media_rounds,
        )
        for database in databases
    }
    results["tools"] = await tool_turns("sqlite", plan.latency, plan.tool_chats, plan.tool_rounds)
    return results


async def main(
    *,
    smoke: bool = False,
    json_path: Path | None = None,
    postgres: bool = True,
    profile: Path | None = None,
    echo: bool = True,
) -> dict[str, Any]:
    results = await run(SMOKE if smoke else FULL, postgres=postgres, profile=profile)
    if echo:
        print(format_table(results))
    if json_path is not None:
        text = json.dumps(results, indent=2) + "\n"
        await asyncio.to_thread(json_path.write_text, text, encoding="utf-8")
    return results


def cli(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, a few seconds")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write results as JSON")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    parser.add_argument(
        "--profile",
        type=Path,
        metavar="FILE",
        help="py-spy the bot process during the largest no-flood-limit run (collapsed stacks)",
    )
    args = parser.parse_args(argv)
    asyncio.run(
        main(
            smoke=args.smoke,
            json_path=args.json,
            postgres=not args.no_postgres,
            profile=args.profile,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
