"""message content as typed parts; message_parts (Telegram ids) renamed message_deliveries

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03

`message_content` holds the ordered parts of messages that are more than text, which
`messages.has_parts` flags; a text message keeps its one part in `messages.content`, so
existing rows need no backfill. On PostgreSQL the rename is in place (constraints renamed to
the naming convention with it); SQLite keeps constraint names in the table's SQL, so there
the delivery rows are copied into a new table and the old one dropped.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
COLUMNS = "message_id, position, telegram_message_id"


def _create_deliveries(name: str) -> None:
    op.create_table(
        name,
        sa.Column("message_id", BIG_ID, nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("telegram_message_id", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f(f"fk_{name}_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", "position", name=op.f(f"pk_{name}")),
    )


def _rename_deliveries(old: str, new: str) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.rename_table(old, new)
        op.execute(f"ALTER TABLE {new} RENAME CONSTRAINT pk_{old} TO pk_{new}")
        op.execute(
            f"ALTER TABLE {new} RENAME CONSTRAINT "
            f"fk_{old}_message_id_messages TO fk_{new}_message_id_messages"
        )
        return
    _create_deliveries(new)
    op.execute(f"INSERT INTO {new} ({COLUMNS}) SELECT {COLUMNS} FROM {old}")
    op.drop_table(old)


def upgrade() -> None:
    _rename_deliveries("message_parts", "message_deliveries")
    # A plain ADD COLUMN on both: a batch would rebuild `messages` on SQLite, and dropping
    # the old table there would cascade into every table that references it.
    op.add_column(
        "messages", sa.Column("has_parts", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.create_table(
        "message_content",
        sa.Column("message_id", BIG_ID, nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("text", sa.Text(), server_default="", nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["messages.id"],
            name=op.f("fk_message_content_message_id_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", "position", name=op.f("pk_message_content")),
    )


def downgrade() -> None:
    op.drop_table("message_content")
    if op.get_bind().dialect.name == "sqlite":  # native since SQLite 3.35; no rebuild
        op.execute("ALTER TABLE messages DROP COLUMN has_parts")
    else:
        op.drop_column("messages", "has_parts")
    _rename_deliveries("message_deliveries", "message_parts")
