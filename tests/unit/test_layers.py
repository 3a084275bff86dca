"""The import contract (`[tool.importlinter]` in pyproject.toml) holds on this tree and breaks
on a reversed import: each case copies bot/, adds one import that points the wrong way and runs
the real `lint-imports` on the copy."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """`lint-imports` over the `bot` package found first on the path: the one under `root`."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(root / "pyproject.toml")],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def copy_of_the_tree(tmp_path: Path) -> Path:
    shutil.copytree(ROOT / "bot", tmp_path / "bot", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_import_contract_holds_on_this_tree(tmp_path: Path) -> None:
    result = lint_imports(copy_of_the_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "reversed_import", "complaint"),
    [
        # the core reaching into the runtime around it
        (
            "bot/turn.py",
            "import bot.runtime.metrics",
            "bot.turn is not allowed to import bot.runtime",
        ),
        # the runtime reaching into the frontend (web.py -> telegram.handlers, before)
        (
            "bot/runtime/web.py",
            "import bot.telegram.handlers",
            "bot.runtime is not allowed to import bot.telegram",
        ),
        # one frontend reaching into the other (console.py -> telegram.app, before)
        ("bot/console.py", "import bot.telegram.app", "bot.console is not allowed to import"),
        # config reaching into llm/ (config.py -> llm.profile, before)
        ("bot/config.py", "import bot.llm.endpoint", "bot.config is not allowed to import bot.llm"),
        # the database reaching up into the prompt
        (
            "bot/db/store.py",
            "import bot.prompt.recall",
            "bot.db is not allowed to import bot.prompt",
        ),
        # the pure fitter reaching into the database (memory.py -> db.store, before)
        (
            "bot/prompt/fit.py",
            "import bot.db.store",
            "bot.prompt.fit is not allowed to import bot.db",
        ),
    ],
)
def test_import_contract_breaks_on_a_reversed_import(
    tmp_path: Path, module: str, reversed_import: str, complaint: str
) -> None:
    root = copy_of_the_tree(tmp_path)
    with (root / module).open("a") as file:
        file.write(f"\n{reversed_import}\n")
    result = lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert complaint in result.stdout


def test_import_contract_breaks_on_a_module_left_out_of_the_layers(tmp_path: Path) -> None:
    root = copy_of_the_tree(tmp_path)
    (root / "bot" / "newthing.py").write_text('"""Not placed in any layer."""\n')
    result = lint_imports(root)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "- bot.newthing" in result.stdout
