"""Every table and column has a /forget rule: a new one without a rule fails here."""

from __future__ import annotations

from sqlalchemy import String, Text

from bot.db.models import Base
from bot.db.userdata import (
    DELETE,
    FORGET_RULES,
    FORGOTTEN,
    KEEP,
    REDACT,
    SHARED,
    WHEN_DONE,
    redacted,
)

# Text columns kept as they are: fixed labels and ids written as text, never a user's words.
TEXT_KEPT = {
    ("chats", "type"),
    ("audit", "action"),
    ("audit", "target"),
    ("poller_lease", "holder"),
}


def test_every_table_and_column_has_a_rule() -> None:
    assert set(FORGET_RULES) == set(Base.metadata.tables), "a table without /forget rules"
    for name, table in Base.metadata.tables.items():
        assert set(FORGET_RULES[name]) == set(table.columns.keys()), f"{name}: columns differ"


def test_rules_are_known_and_a_row_is_deleted_whole() -> None:
    for name, rules in FORGET_RULES.items():
        assert set(rules.values()) <= {DELETE, REDACT, KEEP, SHARED, WHEN_DONE}, name
        if DELETE in rules.values():
            assert set(rules.values()) == {DELETE}, f"{name}: a deleted row takes every column"


def test_no_text_a_user_wrote_is_kept() -> None:
    for name, table in Base.metadata.tables.items():
        for column in table.columns:
            rule = FORGET_RULES[name][column.name]
            if isinstance(column.type, String | Text) and rule == KEEP:
                assert (name, column.name) in TEXT_KEPT, f"{name}.{column.name} kept as text"


def test_every_redacted_column_gets_a_value_it_can_hold() -> None:
    for name, table in Base.metadata.tables.items():
        for column, value in redacted(name).items():
            if value is None:
                assert table.columns[column].nullable, f"{name}.{column} is NOT NULL"
    assert all(FORGET_RULES[t][c] == REDACT for t, c in FORGOTTEN)


def test_only_the_update_payload_waits_until_done() -> None:
    emptied = [
        (t, c) for t, rules in FORGET_RULES.items() for c, r in rules.items() if r == WHEN_DONE
    ]
    assert emptied == [("update_log", "payload")]
