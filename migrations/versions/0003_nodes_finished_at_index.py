"""Index nodes.finished_at: the /metrics node-latency query reads the nodes finished in its window.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 09:00:00.000000

On Postgres this is a plain CREATE INDEX inside the upgrade's transaction: writes to ``nodes`` wait while it
builds (seconds for millions of rows). On a very large table, create it beforehand with
``CREATE INDEX CONCURRENTLY ix_nodes_finished_at ON nodes (finished_at)``: this upgrade then skips it.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0003'
down_revision: str | Sequence[str] | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_nodes_finished_at', 'nodes', ['finished_at'], unique=False, if_not_exists=True)


def downgrade() -> None:
    op.drop_index('ix_nodes_finished_at', table_name='nodes', if_exists=True)
