"""The human review queue (review_tasks, review_decisions) and duplicates decided once (dedup_entries,
dedup_bands): issue 14, items 3 and 4. New tables only; the downgrade drops them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04 19:01:04.914491
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0005'
down_revision: str | Sequence[str] | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    
    op.create_table('dedup_entries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=32), nullable=True),
    sa.Column('policy_id', sa.String(length=200), nullable=True),
    sa.Column('policy_version', sa.Integer(), nullable=True),
    sa.Column('exact_key', sa.String(length=64), nullable=False),
    sa.Column('near_key', sa.String(length=64), nullable=True),
    sa.Column('phashes', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('claim_token', sa.String(length=32), nullable=True),
    sa.Column('claim_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('trace_id', sa.String(length=32), nullable=True),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'decided')", name=op.f('ck_dedup_entries_status')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_dedup_entries_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dedup_entries')),
    sa.UniqueConstraint('scope', 'exact_key', name=op.f('uq_dedup_entries_scope_exact_key'))
    )
    op.create_table('review_tasks',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('trace_id', sa.String(length=32), nullable=False),
    sa.Column('run_id', sa.String(length=64), nullable=True),
    sa.Column('custom_id', sa.String(length=512), nullable=True),
    sa.Column('policy_id', sa.Text(), nullable=True),
    sa.Column('policy_version', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=64), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('category_tags', sa.Text(), nullable=False),
    sa.Column('machine_flagged', sa.Boolean(), nullable=False),
    sa.Column('machine_result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('item', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=True),
    sa.Column('lease_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('claims', sa.Integer(), server_default='0', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('pending', 'claimed', 'decided')", name=op.f('ck_review_tasks_status')),
    sa.CheckConstraint('claims >= 0', name=op.f('ck_review_tasks_claims_nonneg')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_review_tasks_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_tasks')),
    sa.UniqueConstraint('trace_id', name=op.f('uq_review_tasks_trace_id'))
    )
    with op.batch_alter_table('review_tasks', schema=None) as batch_op:
        batch_op.create_index('ix_review_tasks_tenant_id_status_created_at', ['tenant_id', 'status', 'created_at'], unique=False)

    op.create_table('dedup_bands',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('entry_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('scope', sa.String(length=64), nullable=False),
    sa.Column('near_key', sa.String(length=64), nullable=False),
    sa.Column('band', sa.Integer(), nullable=False),
    sa.Column('value', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['entry_id'], ['dedup_entries.id'], name=op.f('fk_dedup_bands_entry_id_dedup_entries'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_dedup_bands'))
    )
    with op.batch_alter_table('dedup_bands', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dedup_bands_entry_id'), ['entry_id'], unique=False)
        batch_op.create_index('ix_dedup_bands_scope_near_key_band_value', ['scope', 'near_key', 'band', 'value'], unique=False)

    op.create_table('review_decisions',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('task_id', sa.String(length=64), nullable=False),
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('trace_id', sa.String(length=32), nullable=False),
    sa.Column('reviewer', sa.String(length=64), nullable=False),
    sa.Column('verdict', sa.String(length=16), nullable=False),
    sa.Column('categories', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('machine_flagged', sa.Boolean(), nullable=False),
    sa.Column('seconds_to_decision', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("verdict IN ('allow', 'flag', 'block')", name=op.f('ck_review_decisions_verdict')),
    sa.ForeignKeyConstraint(['task_id'], ['review_tasks.id'], name=op.f('fk_review_decisions_task_id_review_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_review_decisions_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_review_decisions'))
    )
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.create_index('ix_review_decisions_task_id_created_at', ['task_id', 'created_at'], unique=False)
        batch_op.create_index('ix_review_decisions_tenant_id_created_at', ['tenant_id', 'created_at'], unique=False)




def downgrade() -> None:
    
    with op.batch_alter_table('review_decisions', schema=None) as batch_op:
        batch_op.drop_index('ix_review_decisions_tenant_id_created_at')
        batch_op.drop_index('ix_review_decisions_task_id_created_at')

    op.drop_table('review_decisions')
    with op.batch_alter_table('dedup_bands', schema=None) as batch_op:
        batch_op.drop_index('ix_dedup_bands_scope_near_key_band_value')
        batch_op.drop_index(batch_op.f('ix_dedup_bands_entry_id'))

    op.drop_table('dedup_bands')
    with op.batch_alter_table('review_tasks', schema=None) as batch_op:
        batch_op.drop_index('ix_review_tasks_tenant_id_status_created_at')

    op.drop_table('review_tasks')
    op.drop_table('dedup_entries')

