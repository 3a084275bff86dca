"""The private internals of dependencies the bot relies on are where the bot expects them.

Each of these dependencies is upper-bounded in pyproject.toml; when a bound is raised, these
tests say whether the internals moved (and the bot's workaround must move with them).
"""

from __future__ import annotations

import inspect
from importlib.metadata import requires, version

import aiosqlite
import bpe_openai
import uvicorn
from packaging.requirements import Requirement
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
)

from bot.db.sqlite_driver import OneTripCursor
from bot.llm import tokens


def test_aiosqlite_runs_functions_in_its_worker_through_execute() -> None:
    """sqlite_driver sends one function per statement through `Connection._execute`."""
    assert inspect.iscoroutinefunction(aiosqlite.Connection._execute)
    assert "_conn" in inspect.getsource(aiosqlite.Connection.__init__)


def test_sqlalchemy_aiosqlite_adapter_has_the_hooks_the_one_trip_cursor_overrides() -> None:
    for name in ("_execute_async", "_executemany_async", "_make_new_cursor", "_aenter_cursor"):
        assert hasattr(AsyncAdapt_aiosqlite_cursor, name), name
        assert name in OneTripCursor.__dict__, name
    assert hasattr(AsyncAdapt_aiosqlite_cursor, "_awaitable_cursor_close")
    assert hasattr(AsyncAdapt_aiosqlite_connection, "_cursor_cls")
    mro = AsyncAdapt_aiosqlite_connection.__mro__
    assert any("_execute_mutex" in inspect.getsource(klass) for klass in mro[:-1])


def test_bpe_openai_keeps_the_loader_caches_tokens_clears() -> None:
    registry = tokens.registry
    loaders = [getattr(registry, "_load_mergeable_ranks", None)]
    loaders += list(getattr(registry, "ENCODING_CONSTRUCTORS", {}).values())
    assert any(callable(getattr(loader, "cache_clear", None)) for loader in loaders), (
        "bpe_openai no longer caches its loaders where _release_loader_tables looks"
    )
    assert bpe_openai.get_encoding("o200k_base").encode("hello")


def test_uvicorn_serve_enters_the_capture_signals_hook_web_overrides() -> None:
    assert "capture_signals" in inspect.getsource(uvicorn.Server.serve)


def test_installed_versions_are_within_the_declared_bounds() -> None:
    """The suite ran against versions the package admits (a stale venv would prove nothing)."""
    bounded = {"sqlalchemy", "aiosqlite", "bpe-openai", "uvicorn"}
    declared = [Requirement(line) for line in requires("memorybot") or []]
    for requirement in declared:
        if requirement.name.lower() in bounded and requirement.marker is None:
            assert requirement.specifier.contains(version(requirement.name)), requirement
            assert any(s.operator == "<" for s in requirement.specifier), requirement
            bounded.discard(requirement.name.lower())
    assert not bounded, f"no upper bound declared for {bounded}"
