"""tenant_limits: a tenant's request rates, concurrent jobs and Batch lines in flight (issue 15).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:30:00.000000

One optional row per tenant; every limit is NULL (off) unless set (``ecoalign tenants limits``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | Sequence[str] | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    'requests_per_second',
    'chat_requests_per_second',
    'moderation_requests_per_second',
    'max_concurrent_jobs',
    'max_batch_lines_in_flight',
)


def upgrade() -> None:
    op.create_table(
        'tenant_limits',
        sa.Column('tenant_id', sa.String(length=32), nullable=False),
        sa.Column('requests_per_second', sa.Integer(), nullable=True),
        sa.Column('chat_requests_per_second', sa.Integer(), nullable=True),
        sa.Column('moderation_requests_per_second', sa.Integer(), nullable=True),
        sa.Column('max_concurrent_jobs', sa.Integer(), nullable=True),
        sa.Column('max_batch_lines_in_flight', sa.BigInteger(), nullable=True),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(' AND '.join(f'({c} IS NULL OR {c} > 0)' for c in _COLUMNS),
                           name=op.f('ck_tenant_limits_positive')),
        sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_limits_tenant_id_tenants'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_tenant_limits')),
    )


def downgrade() -> None:
    op.drop_table('tenant_limits')
