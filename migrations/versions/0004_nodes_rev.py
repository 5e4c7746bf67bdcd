"""nodes.rev: a change counter per node row, so a worker can read only what changed in a job's graph.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 02:00:00.000000

On Postgres a trigger stamps every inserted or updated node row with the next value of ``nodes_rev_seq``; the
controller's graph cache (``ecoalign.store.reads.GraphCache``) then reads only rows stamped after its copy, plus
the nodes still in flight. SQLite gets the column only (the embedded default reads whole graphs).
Adding a column with a constant default does not rewrite the table on Postgres 11 and later.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0004'
down_revision: str | Sequence[str] | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STAMP = """
CREATE OR REPLACE FUNCTION nodes_stamp_rev() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.rev := nextval('nodes_rev_seq');
    RETURN NEW;
END
$$
"""


def upgrade() -> None:
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.add_column(sa.Column('rev', sa.BigInteger(), server_default='0', nullable=False))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('CREATE SEQUENCE IF NOT EXISTS nodes_rev_seq')
        op.execute(_STAMP)
        op.execute('DROP TRIGGER IF EXISTS nodes_stamp_rev ON nodes')
        op.execute(
            'CREATE TRIGGER nodes_stamp_rev BEFORE INSERT OR UPDATE ON nodes '
            'FOR EACH ROW EXECUTE FUNCTION nodes_stamp_rev()'
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('DROP TRIGGER IF EXISTS nodes_stamp_rev ON nodes')
        op.execute('DROP FUNCTION IF EXISTS nodes_stamp_rev()')
        op.execute('DROP SEQUENCE IF EXISTS nodes_rev_seq')
    with op.batch_alter_table('nodes', schema=None) as batch_op:
        batch_op.drop_column('rev')
