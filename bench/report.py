"""The human-readable table of ``python -m bench`` (the JSON carries the same figures)."""

from __future__ import annotations

from typing import Any

PCTS = ("p50_ms", "p95_ms", "p99_ms")
CPU = "bot CPU ms/turn"  # the bot process's CPU time over the measured turns / turns


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.1f}"
    return str(value)


def _rows(header: list[str], rows: list[list[Any]]) -> list[str]:
    cells = [[_cell(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(header)]
    lines = [" | ".join(h.rjust(w) for h, w in zip(header, widths, strict=True))]
    lines.append("-" * len(lines[0]))
    lines += [" | ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return lines


def _overhead(title: str, by_db: dict[str, dict[str, Any]]) -> list[str]:
    header = ["db", "chats", *(f"upd->req {p[:3]}" for p in PCTS)]
    header += [*(f"tok->edit {p[:3]}" for p in PCTS), CPU, "incomplete", "s"]
    rows = []
    for db, runs in by_db.items():
        for chats, r in runs.items():
            req, fin = r["update_to_request"], r["last_token_to_final_edit"]
            rows.append(
                [
                    db,
                    chats,
                    *(req[p] for p in PCTS),
                    *(fin[p] for p in PCTS),
                    r["bot_cpu_ms_per_turn"],
                    r["incomplete"],
                    r["seconds"],
                ]
            )
    return [title, *_rows(header, rows), ""]


def format_table(results: dict[str, Any]) -> str:
    lat = results["plan"]["latency"]
    lines = [
        f"plan {results['plan']['name']}: Telegram round trip {lat['telegram'] * 1000:.0f} ms, "
        f"model {lat['first_token'] * 1000:.0f} ms to first token then "
        f"{lat['tokens_per_second']:.0f} tokens/s, {lat['reply_tokens']}-token replies; "
        "times in ms",
    ]
    if results["postgresql_skipped"]:
        lines.append(f"PostgreSQL skipped: {results['postgresql_skipped']}")
    lines.append("")
    lines += _overhead(
        "1. Overhead per turn, Telegram flood limits ON (tok->edit includes Telegram pacing)",
        results["overhead"],
    )
    lines += _overhead(
        "1b. Same, flood limits OFF (emulator and bot limiter): the bot's own overhead",
        results["overhead_no_flood_limits"],
    )
    header = ["db", "stored msgs", *(f"upd->req {p[:3]}" for p in PCTS), "tok->edit p50", CPU]
    rows: list[list[Any]] = []
    ratios = []
    for db, h in results["history"].items():
        for size, r in h["sizes"].items():
            req = r["update_to_request"]
            fin = r["last_token_to_final_edit"]
            rows.append(
                [db, size, *(req[p] for p in PCTS), fin["p50_ms"], r["bot_cpu_ms_per_turn"]]
            )
        ratios.append(f"{db} {_cell(h['p50_ratio_largest_to_smallest'])}")
    lines += ["2. History-length independence (same prompt, turns alternating; flood limits off)"]
    lines += _rows(header, rows)
    lines += [f"   upd->req p50 ratio largest/smallest (goal <= 1.2): {', '.join(ratios)}", ""]
    t = results["throughput"]
    lines += [
        f"3. {t['chats']} chats at once, one bot process, flood limits on",
        f"   turns/s {_cell(t['turns_per_s'])} ({t['replies_complete']} replies in "
        f"{t['seconds']} s), bot CPU {_cell(t['bot_cpu_ms_per_turn'])} ms per turn, "
        f"bot peak RSS {_cell(t['peak_rss_mb'])} MiB (VmHWM)",
        f"   Telegram calls per reply {t['telegram_calls_per_reply']} "
        f"{t['telegram_calls_per_reply_by_method']}",
        f"   429s received by the bot {t['http_429_received_by_bot']}; shown to users: "
        f"{t['user_visible_error_messages']} error messages, "
        f"{t['replies_missing']} replies missing",
        "",
    ]
    k = results["tokens"]
    lines += [
        f"4. Token counter ({k['model']}, exact encoding {k['exact_encoding']}): "
        f"{k['tokens_per_s']} tokens/s; vs emulator usage.prompt_tokens on "
        f"{k['prompts_compared']} prompts: {k['exact_match_pct']}% exact, "
        f"max deviation {k['max_deviation_pct']}%",
    ]
    lines += ["", *_media(results["media"])]
    tools = results.get("tools")
    if tools:
        t = tools["update_to_final_minus_model"]
        lines += [
            "",
            f"6. One MCP tool call per turn (stdio server; {tools['turns']} turns, SQLite): "
            f"update -> final edit minus model time p50 {_cell(t['p50_ms'])}, "
            f"p99 {_cell(t['p99_ms'])} ({tools['incomplete']} incomplete)",
        ]
    return "\n".join(lines)


def _media(by_db: dict[str, dict[str, Any]]) -> list[str]:
    header = ["db", "turn", *(f"dl->req {p[:3]}" for p in PCTS)]
    rows: list[list[Any]] = []
    effect_header = ["db", "rounds", "tok->edit p50", "p99", "p99 ratio", "PDFs"]
    effect_header += ["bot CPU ms/turn", "parsers' CPU ms/PDF", "parsers' PSS MiB"]
    effect_header += ["bot peak RSS MiB"]
    effect: list[list[Any]] = []
    for db, m in by_db.items():
        for name in ("photo", "pdf"):
            figure = m[f"{name}_download_to_request"]
            rows.append([db, name, *(figure[p] for p in PCTS)])
        idle, busy = m["tok_to_edit_idle"], m["tok_to_edit_while_parsing"]
        effect.append(
            [
                db,
                "idle -> parsing",
                f"{_cell(idle['p50_ms'])} -> {_cell(busy['p50_ms'])}",
                f"{_cell(idle['p99_ms'])} -> {_cell(busy['p99_ms'])}",
                m["p99_ratio_parsing_to_idle"],
                m.get("big_pdfs_read"),
                f"{_cell(m.get('bot_cpu_ms_per_turn_idle'))} -> "
                f"{_cell(m.get('bot_cpu_ms_per_turn_loaded'))}",
                m.get("parse_cpu_ms_per_pdf"),
                m.get("parse_processes_pss_mb"),
                m.get("bot_peak_rss_mb"),
            ]
        )
    pdf_mb = next(iter(by_db.values()))["pdf_mb"] if by_db else "-"
    chats = next(iter(by_db.values()))["other_chats"] if by_db else "-"
    return [
        "5. Attachments: getFile -> model request (download, decode or extraction, prompt)",
        *_rows(header, rows),
        f"   {chats} other chats streaming, idle rounds vs rounds while {pdf_mb} MB PDFs are "
        "parsed back to back (goal: p99 ratio <= 1.2)",
        *_rows(effect_header, effect),
    ]
