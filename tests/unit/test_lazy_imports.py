"""The bot's process starts without the libraries of what it may never be sent or asked.

Pillow, pypdf, python-docx and the MCP SDK cost the bot ~40 MiB of peak memory at 1,000 chats
(bench figure 4) when imported at start. They are imported on the first photo, in the parsing
workers, and by a bot with MCP servers; this checks that no module-level import brings them
back, in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("PIL", "pillow_heif", "pypdf", "docx", "lxml", "mcp", "mcp_types")
PROBE = f"""
import json, sys
import bot.__main__, bot.telegram.app, bot.media, bot.tools, bot.tools.toolbox
print(json.dumps([name for name in {HEAVY!r} if name in sys.modules]))
"""


def test_starting_the_bot_imports_none_of_the_heavy_libraries() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout) == []


def test_the_probe_sees_an_import_when_there_is_one() -> None:
    """The same probe, with the image decoder imported: Pillow is listed (the check can fail)."""
    probe = PROBE.replace("import json, sys", "import json, sys, PIL.Image")
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert "PIL" in json.loads(out.stdout)
