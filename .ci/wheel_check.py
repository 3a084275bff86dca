"""CI: the package as a user installs it — a wheel in a fresh venv, outside the checkout.

Builds the wheel, installs it into a new virtual environment in a temporary folder, then from
another folder runs `memorybot migrate` on a new SQLite database and one `memorybot console`
turn against the OpenAI emulator. Fails (exit 1) with the step that broke.

Usage: .venv/bin/python .ci/wheel_check.py   (from the repository root)
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from emulators.openai_api import OpenAIEmulator  # noqa: E402

TIMEOUT = 600  # seconds for an install; only against a hang


def step(title: str) -> None:
    print(f"-- {title}", flush=True)


def run(
    command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, cwd=cwd, env=env, check=False
    )
    if result.returncode != 0:
        sys.exit(
            f"failed ({result.returncode}): {' '.join(command)}\n{result.stdout}{result.stderr}"
        )
    return result


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without the CI venv or any bot setting of the caller's."""
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    keep["PATH"] = os.pathsep.join(
        p for p in keep.get("PATH", "").split(os.pathsep) if ".venv" not in p
    )
    return keep | extra


async def console_turn(memorybot: Path, cwd: Path, database_url: str) -> None:
    async with OpenAIEmulator() as model:
        env = clean_env(
            OPENAI_BASE_URL=model.base_url,
            OPENAI_API_KEY=model.api_key,
            DATABASE_URL=database_url,
            LOG_LEVEL="WARNING",
        )
        process = await asyncio.create_subprocess_exec(
            str(memorybot),
            "console",
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(b"hello from a wheel\n"), 120)
        if process.returncode != 0 or out.decode() != "Echo: hello from a wheel\n":
            sys.exit(f"console turn failed ({process.returncode}): {out!r}\n{err.decode()}")
        assert len(model.chat_requests()) == 1


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="memorybot-wheel-") as tmp:
        root = Path(tmp)
        step("build the wheel")
        run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(root), str(REPO)])
        [wheel] = root.glob("memorybot-*.whl")
        step(f"install {wheel.name} into a fresh venv")
        venv.create(root / "venv", with_pip=True)
        python = root / "venv" / "bin" / "python"
        run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)])
        elsewhere = root / "elsewhere"
        elsewhere.mkdir()
        found = run([str(python), "-c", "import bot; print(bot.__file__)"], cwd=elsewhere).stdout
        if not found.startswith(str(root / "venv")):
            sys.exit(f"bot imported from {found.strip()}, not from the installed wheel")
        memorybot = root / "venv" / "bin" / "memorybot"
        database = elsewhere / "bot.db"
        url = f"sqlite+aiosqlite:///{database}"
        step("memorybot migrate, from another folder")
        run(
            [str(memorybot), "migrate"],
            cwd=elsewhere,
            env=clean_env(TELEGRAM_BOT_TOKEN="1:wheel", DATABASE_URL=url),
        )
        with sqlite3.connect(database) as db:
            tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master")}
        if not {"alembic_version", "messages", "update_log"} <= tables:
            sys.exit(f"migrate left the schema incomplete: {sorted(tables)}")
        step("one console turn against the OpenAI emulator")
        asyncio.run(console_turn(memorybot, elsewhere, url))
    print("wheel check: passed")


if __name__ == "__main__":
    main()
