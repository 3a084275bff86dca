"""chats.disabled_tools: the tools admins turned off in a chat (/tools)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04

A JSON list of model-facing tool names; NULL means every configured tool is on. A column of
`chats`, so a group upgraded to a supergroup keeps it like its other settings.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("chats", sa.Column("disabled_tools", sa.Text(), nullable=True))


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":  # native since SQLite 3.35; no rebuild
        op.execute("ALTER TABLE chats DROP COLUMN disabled_tools")
    else:
        op.drop_column("chats", "disabled_tools")
