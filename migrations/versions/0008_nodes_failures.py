"""nodes.failures: the attempts of a node that raised while running, apart from those lost to crashes.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 19:10:00.000000

``attempts`` counts every claim; ``failures`` only the attempts that ended in an exception raised by the node's
own work. Only failures count towards ``max_node_attempts`` (poison); crash redeliveries (``attempts -
failures``: lease expired, worker lost) have their own, higher bound (``max_node_crashes``). Existing rows start
at 0 failures. Adding a column with a constant default does not rewrite the table on Postgres 11 and later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0008'
down_revision: str | Sequence[str] | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failures', sa.Integer(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.drop_column('failures')
