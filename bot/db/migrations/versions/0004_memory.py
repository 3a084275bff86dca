"""memory: rolling summaries, forum topics, reasoning kept apart, usage kind

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "summaries",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column(
            "conversation_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("first_message_id", sa.BigInteger(), nullable=False),
        sa.Column("last_message_id", sa.BigInteger(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("token_count", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_summaries_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_summaries")),
    )
    with op.batch_alter_table("summaries") as batch_op:
        batch_op.create_index("ix_summaries_conversation", ["conversation_id", "id"], unique=False)

    with op.batch_alter_table("chats") as batch_op:
        batch_op.add_column(sa.Column("summary_enabled", sa.Boolean(), nullable=True))

    with op.batch_alter_table("conversations") as batch_op:
        batch_op.add_column(sa.Column("thread_id", sa.BigInteger(), nullable=True))
        batch_op.drop_index("ix_conversations_open")
        batch_op.create_index(
            "ix_conversations_open_thread",
            ["chat_id", "thread_id", "user_id", "closed_at"],
            unique=False,
        )

    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("reasoning", sa.Text(), nullable=True))

    with op.batch_alter_table("usage") as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=16), server_default="reply", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("usage") as batch_op:
        batch_op.drop_column("kind")

    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_column("reasoning")

    with op.batch_alter_table("conversations") as batch_op:
        batch_op.drop_index("ix_conversations_open_thread")
        batch_op.create_index(
            "ix_conversations_open", ["chat_id", "user_id", "closed_at"], unique=False
        )
        batch_op.drop_column("thread_id")

    with op.batch_alter_table("chats") as batch_op:
        batch_op.drop_column("summary_enabled")

    with op.batch_alter_table("summaries") as batch_op:
        batch_op.drop_index("ix_summaries_conversation")

    op.drop_table("summaries")
