"""`python -m bench --smoke` runs end to end and reports every figure (never asserts timings)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.__main__ import main
from bench.report import format_table
from tests.conftest import TEST_DATABASE_URL

PCT_KEYS = ("n", "p50_ms", "p95_ms", "p99_ms")


def _check_cpu(run: dict[str, Any]) -> None:
    cpu = run["bot_cpu_ms_per_turn"]
    assert isinstance(cpu, float) and cpu >= 0, cpu


def _check_overhead(run: dict[str, Any], chats: int) -> None:
    assert run["turns"] == chats
    _check_cpu(run)
    assert run["incomplete"] == 0
    assert run["replies_missing"] == 0
    for figure in ("update_to_request", "last_token_to_final_edit"):
        assert set(run[figure]) == set(PCT_KEYS)
        assert run[figure]["n"] == chats
        for key in PCT_KEYS[1:]:
            assert isinstance(run[figure][key], float), (figure, key)


async def test_smoke_bench_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    postgres = TEST_DATABASE_URL.startswith("postgresql")
    results = await main(smoke=True, json_path=out, postgres=postgres, echo=False)

    assert json.loads(out.read_text(encoding="utf-8")) == results
    plan = results["plan"]
    databases = ["sqlite", "postgresql"] if postgres else ["sqlite"]
    assert list(results["overhead"]) == databases
    assert (results["postgresql_skipped"] is None) == postgres
    for db in databases:
        runs = results["overhead"][db]
        assert list(runs) == [str(n) for n in plan["concurrency"]]
        for chats, run in runs.items():
            _check_overhead(run, int(chats))
        largest = plan["concurrency"][-1]
        _check_overhead(results["overhead_no_flood_limits"][db][str(largest)], largest)
        history = results["history"][db]
        assert list(history["sizes"]) == [str(n) for n in plan["history_sizes"]]
        for size in history["sizes"].values():
            assert size["update_to_request"]["n"] == plan["history_turns"]
            _check_cpu(size)
        assert isinstance(history["p50_ratio_largest_to_smallest"], float)

    scale = results["throughput"]
    assert scale["chats"] == plan["scale_chats"]
    assert scale["replies_complete"] == plan["scale_chats"]
    assert scale["replies_missing"] == 0
    assert scale["user_visible_error_messages"] == 0
    assert isinstance(scale["turns_per_s"], float)
    _check_cpu(scale)
    assert isinstance(scale["peak_rss_mb"], float) and scale["peak_rss_mb"] > 0
    assert scale["telegram_calls_per_reply"] >= 1
    assert isinstance(scale["http_429_received_by_bot"], int)

    tokens = results["tokens"]
    assert tokens["exact_encoding"] is True
    assert tokens["tokens_per_s"] > 0
    assert tokens["prompts_compared"] == plan["token_prompts"]
    assert 0 <= tokens["exact_match_pct"] <= 100
    assert tokens["max_deviation_pct"] >= 0

    assert list(results["media"]) == databases
    for db in databases:
        figures = results["media"][db]
        for name in ("photo_download_to_request", "pdf_download_to_request"):
            assert figures[name]["n"] == plan["media_turns"], (db, name)
        for name in ("tok_to_edit_idle", "tok_to_edit_while_parsing"):
            assert figures[name]["n"] == plan["media_chats"] * plan["media_rounds"], (db, name)
        assert isinstance(figures["p99_ratio_parsing_to_idle"], float)
        assert figures["pdf_mb"] > 0
        assert figures["big_pdfs_read"] >= plan["media_rounds"]  # one per round at least
        assert figures["parse_processes_pss_mb"] > 0  # the parsing workers are measured
        assert figures["bot_peak_rss_mb"] > 0
        assert figures["parse_cpu_ms_per_pdf"] > 0
        assert figures["bot_cpu_ms_per_turn_loaded"] is not None
    tools = results["tools"]
    assert tools["turns"] == plan["tool_chats"] * plan["tool_rounds"]
    assert tools["incomplete"] == 0
    assert tools["update_to_final_minus_model"]["n"] == tools["turns"]
    assert "6. One MCP tool call per turn" in format_table(results)
