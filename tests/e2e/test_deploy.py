"""The deployment material in deploy/ agrees with the code and keeps its hardening.

No Docker engine or systemd is needed: the files are parsed and checked as text (compose.yaml
with PyYAML), and `.env.example` is checked against `bot.config.Settings` itself, so adding a
setting without documenting it for operators fails here. `deploy/check` adds hadolint and
`systemd-analyze verify` on top.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import SecretStr

from bot.__main__ import EXIT_CONFIG
from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
SETTING_NAMES = {name.upper() for name in Settings.model_fields}
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}
COMPILERS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|cc|make|cargo|rustc)\b")


# --- helpers ---------------------------------------------------------------------------------


def _env_example() -> tuple[dict[str, str], list[str]]:
    """Settings lines (`KEY=v` and `# KEY=v`) by name, and the names of `##` placeholder lines."""
    values: dict[str, str] = {}
    placeholders: list[str] = []
    seen: list[str] = []
    for line in (DEPLOY / ".env.example").read_text().splitlines():
        if match := re.match(r"^##\s*([A-Z][A-Z0-9_]*)=", line):
            placeholders.append(match[1])
        elif match := re.match(r"^(?:#\s*)?([A-Z][A-Z0-9_]*)=(.*)$", line):
            seen.append(match[1])
            values[match[1]] = match[2]
    assert len(seen) == len(set(seen)), f"duplicate lines in .env.example: {sorted(seen)}"
    return values, placeholders


def _dockerfile_stages() -> list[list[tuple[str, str]]]:
    """Instructions of each stage as (INSTRUCTION, arguments), continuations joined."""
    logical: list[str] = []
    pending = ""
    for raw in (DEPLOY / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[list[tuple[str, str]]] = []
    for line in logical:
        instruction, _, args = line.partition(" ")
        if instruction.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((instruction.upper(), args.strip()))
    return stages


def _unit() -> dict[str, dict[str, list[str]]]:
    """The systemd unit as section -> key -> values (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (DEPLOY / "memorybot.service").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not a KEY=value line: {line!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(s|sec|min|m)?", value)
    assert match, f"unexpected duration {value!r}"
    return float(match[1]) * (60 if match[2] in ("min", "m") else 1)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return loaded


def _command(service: dict[str, Any]) -> list[str]:
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else list(command)


# --- compose.yaml ----------------------------------------------------------------------------


def test_compose_has_postgres_migrate_and_bot(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "migrate", "bot"}
    for name, service in compose["services"].items():
        options = service.get("logging", {}).get("options", {})
        assert "max-size" in options and "max-file" in options, f"{name}: unbounded logs"


def test_compose_postgres_is_persistent_and_health_checked(compose: dict[str, Any]) -> None:
    postgres = compose["services"]["postgres"]
    assert postgres["image"].startswith("postgres:16")
    test = postgres["healthcheck"]["test"]
    assert "pg_isready" in (test if isinstance(test, str) else " ".join(test))
    volume, _, target = postgres["volumes"][0].partition(":")
    assert target == "/var/lib/postgresql/data"
    assert volume in compose["volumes"], "PostgreSQL data must live in a named volume"
    assert "${POSTGRES_PASSWORD" in postgres["environment"]["POSTGRES_PASSWORD"]
    assert "ports" not in postgres, "PostgreSQL must not be published on the host"


def test_compose_migrate_runs_once_before_the_bot(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate, bot = services["migrate"], services["bot"]
    assert _command(migrate) == ["python", "-m", "bot", "migrate"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert migrate["image"] == bot["image"]
    assert bot["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert _command(bot) == ["python", "-m", "bot", "run"]
    assert bot["restart"] == "unless-stopped"


@pytest.mark.parametrize("name", ["migrate", "bot"])
def test_compose_bot_containers_are_locked_down(compose: dict[str, Any], name: str) -> None:
    service = compose["services"][name]
    env_file = service["env_file"]
    assert ".env" in ([env_file] if isinstance(env_file, str) else env_file)
    url = service["environment"]["DATABASE_URL"]
    assert url.startswith("postgresql+asyncpg://") and "@postgres:5432/" in url
    assert service["read_only"] is True
    assert "/tmp" in service["tmpfs"]
    assert "no-new-privileges:true" in service["security_opt"]
    assert service["cap_drop"] == ["ALL"]
    uid = str(service["user"]).partition(":")[0]
    assert uid not in ("0", "root")
    assert uid == _dockerfile_user(), "compose user and the image's USER differ"
    build = service["build"]
    assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"


def test_compose_stop_grace_matches_the_systemd_unit(compose: dict[str, Any]) -> None:
    grace = _seconds(compose["services"]["bot"]["stop_grace_period"])
    assert grace == _seconds(_unit()["Service"]["TimeoutStopSec"][-1])
    assert grace >= 30


def test_compose_variables_are_in_the_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z_]+)", (DEPLOY / "compose.yaml").read_text()))
    values, _ = _env_example()
    assert used <= set(values)


# --- .env.example ----------------------------------------------------------------------------


def test_env_example_lists_exactly_the_settings() -> None:
    values, _ = _env_example()
    assert set(values) - COMPOSE_ONLY == SETTING_NAMES
    assert set(values) >= COMPOSE_ONLY


def test_env_example_placeholders_are_not_settings_yet() -> None:
    """`## KEY=` lines would mark future settings; once one exists, document it for real."""
    _, placeholders = _env_example()
    assert not set(placeholders) & SETTING_NAMES


def test_env_example_leaves_secrets_empty() -> None:
    values, _ = _env_example()
    secrets = {n.upper() for n, f in Settings.model_fields.items() if f.annotation is SecretStr}
    assert secrets >= {"TELEGRAM_BOT_TOKEN", "OPENAI_API_KEY"}
    for name in secrets | COMPOSE_ONLY:
        assert values[name] == "", f"{name} must be empty in the example"
    lines = (DEPLOY / ".env.example").read_text().splitlines()
    assert "TELEGRAM_BOT_TOKEN=" in lines, "the one required setting is left uncommented"


def test_env_example_shows_the_real_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)
    values, _ = _env_example()
    base = Settings(_env_file=None, telegram_bot_token="1:a")
    for name, value in values.items():
        if name in COMPOSE_ONLY or name == "TELEGRAM_BOT_TOKEN" or value == "":
            continue
        field = name.lower()
        parsed = Settings(_env_file=None, telegram_bot_token="1:a", **{field: value})
        assert getattr(parsed, field) == getattr(base, field), f"{name}={value} is not the default"


# --- Dockerfile ------------------------------------------------------------------------------


def _dockerfile_user() -> str:
    users = [args for instruction, args in _dockerfile_stages()[-1] if instruction == "USER"]
    assert users, "the final stage has no USER"
    return users[-1].partition(":")[0]


def test_dockerfile_is_multi_stage_and_runs_as_non_root() -> None:
    stages = _dockerfile_stages()
    assert len(stages) >= 2
    assert " AS builder" in stages[0][0][1]
    assert _dockerfile_user() not in ("0", "root")


def test_dockerfile_final_stage_has_no_compilers() -> None:
    final = _dockerfile_stages()[-1]
    for instruction, args in final:
        if instruction == "RUN":
            assert "apt-get install" not in args and not COMPILERS.search(args), args
        if instruction == "COPY" and "--from=" in args:
            assert args.split()[-2] in ("/opt/venv", "/app"), f"unexpected copy: {args}"


def test_dockerfile_final_stage_runs_the_bot_with_a_healthcheck() -> None:
    final = _dockerfile_stages()[-1]
    by_instruction: dict[str, list[str]] = {}
    for instruction, args in final:
        by_instruction.setdefault(instruction, []).append(args)
    (healthcheck,) = by_instruction["HEALTHCHECK"]
    assert "CMD" in healthcheck and "NONE" not in healthcheck
    assert by_instruction["CMD"] == ['["python", "-m", "bot", "run"]']
    assert by_instruction["STOPSIGNAL"] == ["SIGTERM"]
    env = " ".join(by_instruction["ENV"])
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "DATA_DIR=/data"):
        assert setting in env
    assert any("/data" in volume for volume in by_instruction["VOLUME"])


def test_dockerfile_healthcheck_passes_and_fails_when_it_should(tmp_path: Path) -> None:
    """Run the HEALTHCHECK command itself: healthy with a writable DATA_DIR, not without one."""
    (healthcheck,) = [a for i, a in _dockerfile_stages()[-1] if i == "HEALTHCHECK"]
    argv = json.loads(healthcheck.partition(" CMD ")[2])
    assert argv[0] == "python"
    env = {k: v for k, v in os.environ.items() if k not in SETTING_NAMES}
    env |= {"PYTHONPATH": str(ROOT), "TELEGRAM_BOT_TOKEN": "1:check"}

    def check(**values: str) -> int:
        run = subprocess.run(
            [sys.executable, *argv[1:]], cwd=tmp_path, env=env | values, capture_output=True
        )
        return run.returncode

    assert check(DATA_DIR=str(tmp_path)) == 0
    assert check(DATA_DIR=str(tmp_path / "missing")) != 0
    assert check(DATA_DIR=str(tmp_path / "missing"), DATABASE_URL="postgresql+asyncpg://h/d") == 0
    assert check(DATA_DIR=str(tmp_path), TELEGRAM_BOT_TOKEN="") != 0
    with socket.socket() as sock:  # a port nobody serves: /healthz cannot answer
        sock.bind(("127.0.0.1", 0))
        port = str(sock.getsockname()[1])
    assert check(DATA_DIR=str(tmp_path), HEALTH_PORT=port) != 0
    webhook = {"MODE": "webhook", "WEBHOOK_URL": "https://h/t", "WEBHOOK_SECRET": "s"}
    assert check(DATA_DIR=str(tmp_path), WEBHOOK_PORT=port, **webhook) != 0


def test_dockerfile_installs_the_package_as_a_wheel_with_its_migrations() -> None:
    """A plain wheel install, checked from outside the source tree: no PYTHONPATH work-around."""
    builder = " | ".join(f"{i} {a}" for i, a in _dockerfile_stages()[0])
    assert "pip wheel --no-deps --wheel-dir /dist ." in builder
    assert "pip install --no-index --no-deps /dist/memorybot-*.whl" in builder
    assert "'site-packages' in str(d) and (d / 'env.py').is_file()" in builder
    final = _dockerfile_stages()[-1]
    assert not any("PYTHONPATH" in a for i, a in final if i == "ENV")
    assert [a for i, a in final if i == "COPY"] == ["--from=builder /opt/venv /opt/venv"]


# --- systemd unit ----------------------------------------------------------------------------

HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "PrivateDevices": "yes",
    "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes",
    "ProtectKernelLogs": "yes",
    "ProtectControlGroups": "yes",
    "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
    "RestrictNamespaces": "yes",
    "RestrictSUIDSGID": "yes",
    "CapabilityBoundingSet": "",
    "LockPersonality": "yes",
    "MemoryDenyWriteExecute": "yes",
    "UMask": "0077",
    "ReadWritePaths": "/var/lib/memorybot",
    "StateDirectory": "memorybot",
    "KillSignal": "SIGTERM",
}


def test_systemd_unit_runs_the_bot_from_its_venv() -> None:
    service = _unit()["Service"]
    assert service["User"] == ["memorybot"]
    assert service["WorkingDirectory"] == ["/opt/memorybot"]
    assert service["EnvironmentFile"] == ["/etc/memorybot/env"]
    assert service["ExecStartPre"] == ["/opt/memorybot/.venv/bin/python -m bot migrate"]
    assert service["ExecStart"] == ["/opt/memorybot/.venv/bin/python -m bot run"]
    assert "DATA_DIR=/var/lib/memorybot" in " ".join(service["Environment"]).split()
    assert service["Restart"] == ["on-failure"]
    assert _seconds(service["RestartSec"][-1]) > 0
    assert service["RestartPreventExitStatus"] == [str(EXIT_CONFIG)]
    assert _seconds(service["TimeoutStopSec"][-1]) >= 30
    assert _unit()["Install"]["WantedBy"] == ["multi-user.target"]


def test_systemd_unit_is_hardened() -> None:
    service = _unit()["Service"]
    for key, value in HARDENING.items():
        assert service.get(key, [None])[-1] == value, f"{key}= should be {value!r}"
    assert "@system-service" in service["SystemCallFilter"]


# --- deploy/check ----------------------------------------------------------------------------


def test_check_script_is_strict_and_executable() -> None:
    check = DEPLOY / "check"
    assert os.access(check, os.X_OK)
    assert "set -euo pipefail" in check.read_text()
