"""The packages each checked digest holds, so a vulnerability database update re-matches them
without reading any layer again.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sboms",
        sa.Column("digest", sa.String(80), primary_key=True),
        sa.Column("packages", sa.JSON(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sboms")
