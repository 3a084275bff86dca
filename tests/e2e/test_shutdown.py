"""SIGTERM to a real `python -m bot run` process in the middle of a slow reply.

The emulators run in this test process; the bot is a subprocess configured through its
environment, as an operator would run it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from bot.db.models import Status
from bot.values import Role
from emulators.bot_api import BotAPIEmulator
from emulators.openai_api import OpenAIEmulator, Reply
from tests.e2e.chat import stored_messages

ROOT = Path(__file__).resolve().parents[2]
CHAT = 6060
WORDS = " ".join(f"word{i}" for i in range(60))


async def _start_bot(
    tmp_path: Path, telegram: BotAPIEmulator, model: OpenAIEmulator, url: str, grace: float
) -> asyncio.subprocess.Process:
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "TELEGRAM_BOT_TOKEN": telegram.token,
        "TELEGRAM_BASE_URL": telegram.base_url.removesuffix("/bot"),
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_API_KEY": "sk-test-key",
        "DATABASE_URL": url,
        "SHUTDOWN_GRACE_SECONDS": str(grace),
        "EDIT_INTERVAL": "0.2",
    }
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", cwd=tmp_path, env=env, stderr=asyncio.subprocess.PIPE
    )


async def _sigterm_mid_reply(
    tmp_path: Path, telegram: BotAPIEmulator, model: OpenAIEmulator, url: str, grace: float
) -> tuple[int, bytes]:
    # 60 words in 4-character chunks, 0.1 s apart: about 9 seconds of streaming.
    model.enqueue(Reply(text=WORDS, chunk_chars=4, chunk_delay=0.1))
    process = await _start_bot(tmp_path, telegram, model, url, grace)
    try:
        await telegram.wait_for(lambda: telegram.state.active_polls > 0, timeout=30)
        telegram.send_text(CHAT, "tell me a long story")
        await telegram.wait_for(
            lambda: any("word3" in m.text for m in telegram.bot_messages(CHAT)), timeout=30
        )
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(60):
            _, stderr = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, stderr


async def test_sigterm_mid_reply_stores_the_partial_text_as_interrupted_and_exits_0(
    tmp_path: Path, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    code, stderr = await _sigterm_mid_reply(tmp_path, telegram, model, database_url, grace=0.5)
    assert code == 0, stderr.decode()[-2000:]
    user, reply = await stored_messages(database_url, CHAT)
    assert user.role == Role.USER and user.content == "tell me a long story"
    assert reply.status == Status.INTERRUPTED
    assert reply.content.startswith("word0 word1 word2 word3")
    assert len(reply.content) < len(WORDS)
    assert b"did not finish in time" in stderr


async def test_sigterm_lets_a_reply_finish_within_the_grace_period(
    tmp_path: Path, telegram: BotAPIEmulator, model: OpenAIEmulator, database_url: str
) -> None:
    code, stderr = await _sigterm_mid_reply(tmp_path, telegram, model, database_url, grace=60)
    assert code == 0, stderr.decode()[-2000:]
    _, reply = await stored_messages(database_url, CHAT)
    assert (reply.status, reply.content) == (Status.COMPLETE, WORDS)
    assert any(m.text == WORDS for m in telegram.bot_messages(CHAT))
