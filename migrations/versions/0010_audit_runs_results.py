"""audit_runs and audit_results: stored audits of traces, versioned by evaluator id (issue 13).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04 19:30:00.000000

New tables only: nothing existing changes, so an audit can never overwrite the scores it re-scores.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0010'
down_revision: str | Sequence[str] | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('audit_runs',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('tenant_id', sa.String(length=32), nullable=True),
    sa.Column('evaluator', sa.String(length=400), nullable=False),
    sa.Column('aggregate', sa.String(length=8), nullable=False),
    sa.Column('tau', sa.Float(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('spec', _JSON, nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('summary', _JSON, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("source IN ('import', 'jobs')", name=op.f('ck_audit_runs_source')),
    sa.CheckConstraint("status IN ('running', 'completed', 'failed')", name=op.f('ck_audit_runs_status')),
    sa.CheckConstraint("aggregate IN ('min', 'mean')", name=op.f('ck_audit_runs_aggregate')),
    sa.CheckConstraint('tau >= 0 AND tau <= 1', name=op.f('ck_audit_runs_tau_range')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_audit_runs_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_runs'))
    )
    with op.batch_alter_table('audit_runs', schema=None) as batch_op:
        batch_op.create_index('ix_audit_runs_tenant_id_created_at', ['tenant_id', 'created_at'], unique=False)

    op.create_table('audit_results',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('run_id', sa.String(length=32), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('trace_id', sa.String(length=512), nullable=True),
    sa.Column('trace_kind', sa.String(length=16), nullable=False),
    sa.Column('process_blind', sa.Boolean(), nullable=True),
    sa.Column('path_safety', sa.Float(), nullable=True),
    sa.Column('answer_safety', sa.Float(), nullable=True),
    sa.Column('weakest_step', sa.Integer(), nullable=True),
    sa.Column('step_safeties', _JSON, nullable=True),
    sa.Column('original', _JSON, nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("trace_kind IN ('job', 'import')", name=op.f('ck_audit_results_trace_kind')),
    sa.ForeignKeyConstraint(['run_id'], ['audit_runs.id'], name=op.f('fk_audit_results_run_id_audit_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_results')),
    sa.UniqueConstraint('run_id', 'position', name=op.f('uq_audit_results_run_id_position'))
    )
    with op.batch_alter_table('audit_results', schema=None) as batch_op:
        batch_op.create_index('ix_audit_results_trace_id', ['trace_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('audit_results', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_results_trace_id')
    op.drop_table('audit_results')
    with op.batch_alter_table('audit_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_runs_tenant_id_created_at')
    op.drop_table('audit_runs')
