"""Figure 5: attachments. The bot's time from a file's download to the model request, for a
photo turn and a PDF turn, and what parsing a 20 MB PDF does to other chats' streaming.

*Download → model request* runs from the Bot API emulator receiving `getFile` to the OpenAI
emulator receiving the turn's request: download, decode/resize or text extraction, storing,
prompt building. Then other chats stream in rounds, alternately idle and loaded; in a loaded
round 19 MB PDFs arrive back to back, each from a new chat, from before the round's first
message until its last reply, so every turn of it streams while one is downloaded or parsed.
The loaded rounds' *last token → final edit* p99 is compared with the idle rounds' (goal
≤ 1.2×); alternating puts the machine's own load on both alike.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from bench.harness import (
    CpuMeter,
    Latency,
    TurnTimes,
    cpu_seconds,
    descendants,
    percentiles,
    pss_mb,
)
from bench.overhead import Rig, first_chats, rig, run_turns
from emulators import media_samples as samples

MEDIA_CHAT = 800_000_000
SETTINGS = {"model": "gpt-4o"}  # a vision model
PDF_PAGES = [f"Page {n}: " + "The quarterly report in numbers and words. " * 30 for n in range(60)]


async def _file_turn(r: Rig, chat_id: int, send: str, caption: str) -> float | None:
    """Send one attachment with a unique caption; seconds from getFile to the model request."""
    if send == "photo":
        r.telegram.send_photo(chat_id, samples.image_bytes(1600, 1200), caption=caption)
    else:
        data = samples.pdf_bytes(PDF_PAGES)
        r.telegram.send_document(
            chat_id, data, file_name="report.pdf", mime_type="application/pdf", caption=caption
        )
    asked = len(r.telegram.calls_for("getFile"))
    await r.telegram.wait_for(lambda: any(caption in c.key for c in r.model.calls), timeout=60)
    await r.telegram.wait_for(lambda: r.model.text in _shown(r, chat_id), timeout=60)
    get_file = r.telegram.calls_for("getFile")[asked]
    request = next(c for c in r.model.calls if caption in c.key)
    return request.request_at - (get_file.at - r.telegram.latency)


async def _answered(r: Rig, chat_id: int) -> None:
    await r.telegram.wait_for(lambda: r.model.text in _shown(r, chat_id), timeout=120)


def _downloads_past(r: Rig, count: int) -> Callable[[], bool]:
    return lambda: len(r.telegram.files.downloads) > count


def _shown(r: Rig, chat_id: int) -> list[str]:
    return [m.text for m in r.telegram.bot_messages(chat_id)]


def big_pdf(target_bytes: int) -> bytes:
    """A PDF of about `target_bytes` (under Telegram's 20 MB download limit)."""
    page = "A long page of a very large document, repeated to make it heavy. " * 600
    pages = max(1, target_bytes // (len(page) + 200))
    return samples.pdf_bytes([f"{n}: {page}" for n in range(pages)])


async def _pdfs_back_to_back(r: Rig, heavy: bytes, first_chat: int, sent: list[int]) -> None:
    """Send `heavy` from a new chat as soon as the last one is answered, until cancelled."""
    chat_id = first_chat
    while True:
        r.telegram.send_document(
            chat_id, heavy, file_name="big.pdf", mime_type="application/pdf", caption="?"
        )
        sent.append(chat_id)
        await _answered(r, chat_id)
        chat_id += 1


async def media(
    database: str, latency: Latency, turns: int, chats: int, pdf_mb: int, rounds: int
) -> dict[str, Any]:
    """Photo and PDF turn overheads, and other chats' tok→edit in idle rounds and in rounds
    during which big PDFs are parsed back to back (the two alternate)."""
    heavy = big_pdf(pdf_mb * 1024 * 1024)
    idle: list[TurnTimes] = []
    loaded: list[TurnTimes] = []
    sent: list[int] = []
    workers_mb = 0.0
    async with rig(database, latency, flood=False, settings=SETTINGS) as r:
        await run_turns(r, first_chats(1), 0, limit=30)  # warm-up
        photo = [await _file_turn(r, MEDIA_CHAT, "photo", f"photo {n}?") for n in range(turns)]
        pdf = [await _file_turn(r, MEDIA_CHAT + 1, "pdf", f"pdf {n}?") for n in range(turns)]
        streaming = first_chats(chats)
        idle_cpu, loaded_cpu = CpuMeter(r.process.pid), CpuMeter(r.process.pid)
        for round_ in range(rounds):
            idle_cpu.start()
            idle += await run_turns(r, streaming, 2 * round_ + 1, limit=60 + chats)
            idle_cpu.stop()
            loaded_cpu.start()
            downloads = len(r.telegram.files.downloads)
            readers = asyncio.create_task(
                _pdfs_back_to_back(r, heavy, MEDIA_CHAT + 10 + 1000 * round_, sent)
            )
            # The round starts once the first PDF is on its way in.
            await r.telegram.wait_for(_downloads_past(r, downloads), 60)
            loaded += await run_turns(r, streaming, 2 * round_ + 2, limit=60 + chats)
            # The parsing workers (and the fork server they start from), while they work.
            workers_mb = max(workers_mb, pss_mb(descendants(r.process.pid)))
            readers.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await readers
            await _answered(r, sent[-1])  # the last PDF, before the next idle round
            loaded_cpu.stop()
        workers = descendants(r.process.pid)
        parse_cpu = sum(cpu_seconds(pid) or 0.0 for pid in workers)
    idle_p99 = percentiles(t.to_final for t in idle)["p99_ms"]
    loaded_p99 = percentiles(t.to_final for t in loaded)["p99_ms"]
    ratio = round(loaded_p99 / idle_p99, 3) if idle_p99 and loaded_p99 else None
    return {
        "photo_download_to_request": percentiles(photo),
        "pdf_download_to_request": percentiles(pdf),
        "pdf_mb": round(len(heavy) / 1024 / 1024, 1),
        "other_chats": chats,
        "rounds": rounds,
        "big_pdfs_read": len(sent),
        "parse_processes_pss_mb": workers_mb,
        "bot_peak_rss_mb": r.peak_rss_mb,
        # The bot's own process, per streaming turn (a loaded round's PDFs included), and the
        # parsing processes' CPU per PDF read (the 60-page ones and the big ones).
        "bot_cpu_ms_per_turn_idle": idle_cpu.ms_per_turn(len(idle)),
        "bot_cpu_ms_per_turn_loaded": loaded_cpu.ms_per_turn(len(loaded)),
        "parse_cpu_ms_per_pdf": round(parse_cpu * 1000 / (turns + len(sent)), 1) if sent else None,
        "tok_to_edit_idle": percentiles(t.to_final for t in idle),
        "tok_to_edit_while_parsing": percentiles(t.to_final for t in loaded),
        "p99_ratio_parsing_to_idle": ratio,
    }
