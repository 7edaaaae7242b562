"""Per check: the compressed size, the findings (with their fixes) and the layers; per job:
when its latest attempt started running.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("results") as batch:
        batch.add_column(sa.Column("compressed_bytes", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("findings", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("layer_list", sa.JSON(), nullable=True))
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("started", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("started")
    with op.batch_alter_table("results") as batch:
        batch.drop_column("layer_list")
        batch.drop_column("findings")
        batch.drop_column("compressed_bytes")
