"""update_log.user_id: whose update it is, so /forget finds their updates in groups too

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("update_log") as batch:
        batch.add_column(sa.Column("user_id", sa.BigInteger(), nullable=True))
        batch.create_index(batch.f("ix_update_log_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("update_log") as batch:
        batch.drop_index(batch.f("ix_update_log_user_id"))
        batch.drop_column("user_id")
