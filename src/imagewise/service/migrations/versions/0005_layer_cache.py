"""Layer results shared by every worker of the fleet (the layer cache's records, in the
database): a layer shared by many images is analysed once for the whole fleet.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "layer_cache",
        sa.Column("key", sa.String(400), primary_key=True),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("layer_cache")
