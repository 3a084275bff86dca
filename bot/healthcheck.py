"""Container health probe (`python -m bot.healthcheck`, the image's HEALTHCHECK).

When the bot serves HTTP (webhook mode, or HEALTH_PORT in polling mode) it asks `/healthz`;
otherwise it checks what a restart would not fix by itself: the settings validate and, for
SQLite, DATA_DIR is writable. Exit code 0 means healthy.
"""

from __future__ import annotations

import os
import sys
import urllib.request

from bot.config import load_settings
from bot.errors import ConfigError

TIMEOUT = 5.0


def main() -> int:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
        return 1
    port = settings.webhook_port if settings.mode == "webhook" else settings.health_port
    if port:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=TIMEOUT):
                return 0
        except OSError as exc:  # URLError and HTTPError are OSErrors
            print(f"unhealthy: /healthz: {exc}", file=sys.stderr)
            return 1
    if settings.database_url or os.access(settings.data_dir, os.W_OK):
        return 0
    print(f"unhealthy: {settings.data_dir} is not writable", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
