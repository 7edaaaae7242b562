"""What a finished job reports (``outcome``: "pass: 1 layer(s) from the fleet's layer
results, 1 analysed", "analysed"); an index on the job key (a check split by content looks up
its ``layer`` jobs by key); and at most one queued or running job per key, enforced by a
partial unique index (two workers submitting one key at once could both insert before).
Duplicates an older database holds are cancelled first, the oldest of each key kept.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

ACTIVE = "state in ('queued', 'running')"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("outcome", sa.Text(), nullable=True))
    op.create_index("ix_jobs_key", "jobs", ["key"])
    op.execute(
        f"update jobs set state = 'cancelled' where {ACTIVE} and id not in "
        f"(select min(id) from jobs where {ACTIVE} group by key)"
    )
    op.create_index(
        "ux_jobs_active_key",
        "jobs",
        ["key"],
        unique=True,
        sqlite_where=sa.text(ACTIVE),
        postgresql_where=sa.text(ACTIVE),
    )


def downgrade() -> None:
    op.drop_index("ux_jobs_active_key", table_name="jobs")
    op.drop_index("ix_jobs_key", table_name="jobs")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("outcome")
