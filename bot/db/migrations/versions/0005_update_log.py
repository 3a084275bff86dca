"""update log: processed Telegram updates, for de-duplication and per-chat order

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "update_log",
        sa.Column("update_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("chat_id", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("done", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("update_id", name=op.f("pk_update_log")),
    )
    with op.batch_alter_table("update_log") as batch_op:
        batch_op.create_index(
            "ix_update_log_chat_pending", ["chat_id", "done", "update_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_update_log_received_at"), ["received_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("update_log") as batch_op:
        batch_op.drop_index(batch_op.f("ix_update_log_received_at"))
        batch_op.drop_index("ix_update_log_chat_pending")
    op.drop_table("update_log")
