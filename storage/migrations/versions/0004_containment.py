"""containment

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 18:13:31.662536
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
        "containment_proposals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("proposed_by", sa.String(length=32), nullable=False),
        sa.Column("proposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("channel_id", sa.String(length=32), nullable=True),
        sa.Column("message_ts", sa.String(length=32), nullable=True),
        sa.Column("residual", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_containment_proposals_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_containment_proposals")),
    )
    with op.batch_alter_table("containment_proposals", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_containment_proposals_incident_id"), ["incident_id"], unique=False
        )

    op.create_table(
        "containment_actions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("proposal_id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("idempotency_key", sa.String(length=64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("target_override", sa.String(length=200), nullable=True),
        sa.Column("target_needed", sa.Boolean(), nullable=False),
        sa.Column("manual", sa.Boolean(), nullable=False),
        sa.Column("emergency", sa.Boolean(), nullable=False),
        sa.Column("role", sa.String(length=40), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("expected_impact", sa.Text(), nullable=False),
        sa.Column("atlas", sa.JSON(), nullable=False),
        sa.Column("approvals_needed", sa.Integer(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["incident_id"],
            ["incidents.id"],
            name=op.f("fk_containment_actions_incident_id_incidents"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["containment_proposals.id"],
            name=op.f("fk_containment_actions_proposal_id_containment_proposals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_containment_actions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_containment_actions_idempotency_key")),
        sa.UniqueConstraint(
            "proposal_id", "kind", name=op.f("uq_containment_actions_proposal_id_kind")
        ),
    )
    op.create_table(
        "containment_decisions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["containment_actions.id"],
            name=op.f("fk_containment_decisions_action_id_containment_actions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_containment_decisions")),
        sa.UniqueConstraint(
            "action_id", "user_id", name=op.f("uq_containment_decisions_action_id_user_id")
        ),
    )


def downgrade() -> None:
    op.drop_table("containment_decisions")
    op.drop_table("containment_actions")
    with op.batch_alter_table("containment_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_containment_proposals_incident_id"))

    op.drop_table("containment_proposals")
