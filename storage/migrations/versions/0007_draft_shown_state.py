"""notifications.draft_state: the state a planned message's war-room draft last showed

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 22:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.add_column(sa.Column("draft_state", sa.String(length=16), nullable=True))
    # Drafts already posted are taken to show their row as it stands.
    op.execute("UPDATE notifications SET draft_state = state WHERE draft_ts IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_column("draft_state")
