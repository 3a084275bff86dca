"""The streaming benchmark runs end to end (smoke size); only structure and correctness are
checked, never timings."""

from __future__ import annotations

import json
from pathlib import Path

from bench.stream import COUNTED_METHODS, main


async def test_smoke_benchmark_runs_both_scenarios(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    results = await main(smoke=True, json_path=out, echo=False)

    assert json.loads(out.read_text(encoding="utf-8")) == results
    assert results["model"]["tokens"] > 0
    scenarios = results["scenarios"]
    assert set(scenarios) == {"private", "group"}
    assert scenarios["private"]["chat_type"] == "private"
    assert scenarios["group"]["chat_type"] == "supergroup"
    assert scenarios["group"]["chat_id"] < 0
    for name, scenario in scenarios.items():
        assert scenario["final_text_matches"] is True, name
        calls = scenario["calls"]
        assert set(calls) == {*COUNTED_METHODS, "total"}
        for count in [*calls.values(), scenario["http_429"], scenario["messages"]]:
            assert isinstance(count, int) and not isinstance(count, bool) and count >= 0
        assert calls["total"] == sum(calls[m] for m in COUNTED_METHODS)
        assert calls["sendMessage"] >= 1
        assert scenario["model_chunks_emitted"] == results["model"]["chunks"]
        assert scenario["first_visible_via"] in {"sendMessage", "sendMessageDraft"}
        for key in (
            "edits_per_s",
            "first_token_to_first_visible_s",
            "last_token_to_final_edit_s",
            "turn_s",
        ):
            assert isinstance(scenario[key], float), key
