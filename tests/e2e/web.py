"""Helpers for tests of the bot's HTTP side: free ports, webhook settings, metric values."""

from __future__ import annotations

import re
import socket
from typing import Any

from bot.config import Settings
from tests.conftest import SettingsFactory

SECRET = "test-secret_0123"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def webhook_settings(make_settings: SettingsFactory, **overrides: Any) -> Settings:
    """Webhook mode on a free local port, Telegram posting to /telegram with SECRET."""
    port = free_port()
    values: dict[str, Any] = {
        "mode": "webhook",
        "webhook_url": f"http://127.0.0.1:{port}/telegram",
        "webhook_listen": "127.0.0.1",
        "webhook_port": port,
        "webhook_secret": SECRET,
    }
    values.update(overrides)
    return make_settings(**values)


def metric(text: str, name: str, labels: str = "") -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    pattern = re.escape(name + (f"{{{labels}}}" if labels else "")) + r" ([0-9.e+-]+)$"
    match = re.search(pattern, text, flags=re.MULTILINE)
    return float(match[1]) if match else 0.0
