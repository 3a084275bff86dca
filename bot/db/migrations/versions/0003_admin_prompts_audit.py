"""admin prompts audit

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "audit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("actor_id", sa.BigInteger(), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=128), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit")),
    )
    with op.batch_alter_table("audit") as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_actor_id"), ["actor_id"], unique=False)

    op.create_table(
        "global_settings",
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_global_settings")),
    )
    op.create_table(
        "prompts",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("author_id", sa.BigInteger(), nullable=False),
        sa.Column("deleted", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prompts")),
        sa.UniqueConstraint("name", "version", name="uq_prompts_name_version"),
    )
    with op.batch_alter_table("chats") as batch_op:
        batch_op.add_column(sa.Column("preset", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("presence_penalty", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("frequency_penalty", sa.Float(), nullable=True))
        batch_op.add_column(sa.Column("seed", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("stop", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("is_allowed", sa.Boolean(), server_default=sa.false(), nullable=False)
        )

    with op.batch_alter_table("usage") as batch_op:
        batch_op.create_index(batch_op.f("ix_usage_created_at"), ["created_at"], unique=False)

    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(
            sa.Column("is_allowed", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:

    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("is_allowed")

    with op.batch_alter_table("usage") as batch_op:
        batch_op.drop_index(batch_op.f("ix_usage_created_at"))

    with op.batch_alter_table("chats") as batch_op:
        batch_op.drop_column("is_allowed")
        batch_op.drop_column("stop")
        batch_op.drop_column("seed")
        batch_op.drop_column("frequency_penalty")
        batch_op.drop_column("presence_penalty")
        batch_op.drop_column("preset")

    op.drop_table("prompts")
    op.drop_table("global_settings")
    with op.batch_alter_table("audit") as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_actor_id"))

    op.drop_table("audit")
