"""The first schema: jobs, results, image_refs, alerts, reports, schedule_runs, tokens.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(255), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("last_sent", sa.Float(), nullable=False),
    )
    op.create_table(
        "image_refs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("registry", sa.String(255), nullable=False),
        sa.Column("repository", sa.String(255), nullable=False),
        sa.Column("tag", sa.String(128), nullable=False),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("seen", sa.Float(), nullable=False),
        sa.UniqueConstraint("registry", "repository", "tag", name="one_digest_per_tag"),
    )
    op.create_index("ix_image_refs_digest", "image_refs", ["digest"], unique=False)
    op.create_table(
        "jobs",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("not_before", sa.Float(), nullable=False),
        sa.Column("claimed_by", sa.String(64)),
        sa.Column("heartbeat", sa.Float()),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("finished", sa.Float()),
        sa.Column("error", sa.Text()),
    )
    op.create_index("ix_jobs_state", "jobs", ["state"], unique=False)
    op.create_table(
        "reports",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
        sa.Column("body", sa.JSON(), nullable=False),
    )
    op.create_index("ix_reports_kind", "reports", ["kind"], unique=False)
    op.create_table(
        "results",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("digest", sa.String(80), nullable=False),
        sa.Column("checked", sa.Float(), nullable=False),
        sa.Column("passed", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("layers", sa.Integer(), nullable=False),
        sa.Column("efficiency", sa.Float(), nullable=False),
        sa.Column("wasted_bytes", sa.Integer(), nullable=False),
        sa.Column("reclaimable_bytes", sa.Integer(), nullable=False),
        sa.Column("vulnerabilities", sa.JSON(), nullable=False),
        sa.Column("vulnerability_ids", sa.JSON(), nullable=False),
        sa.Column("secrets", sa.Integer(), nullable=False),
        sa.Column("violations", sa.JSON(), nullable=False),
    )
    op.create_index("ix_results_digest", "results", ["digest"], unique=False)
    op.create_table(
        "schedule_runs",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("last_due", sa.Float(), nullable=False),
    )
    op.create_table(
        "tokens",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scope", sa.String(16), nullable=False),
        sa.Column("created", sa.Float(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("tokens")
    op.drop_table("schedule_runs")
    op.drop_table("results")
    op.drop_table("reports")
    op.drop_table("jobs")
    op.drop_table("image_refs")
    op.drop_table("alerts")
