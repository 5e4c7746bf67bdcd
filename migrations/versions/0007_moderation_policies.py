"""Tenant moderation policies: policies, their immutable versions, each tenant's default; the policy a
moderation trace was decided under.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 19:30:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = '0007'
down_revision: str | Sequence[str] | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')


def upgrade() -> None:
    op.create_table('policies',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('latest_version', sa.Integer(), server_default='1', nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('latest_version >= 1', name=op.f('ck_policies_latest_version_pos')),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_policies_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_policies'))
    )
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.create_index('ix_policies_tenant_id_created_at', ['tenant_id', 'created_at'], unique=False)

    op.create_table('policy_versions',
    sa.Column('policy_id', sa.String(length=40), nullable=False),
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('document', _JSON, nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint('version >= 1', name=op.f('ck_policy_versions_version_pos')),
    sa.ForeignKeyConstraint(['policy_id'], ['policies.id'], name=op.f('fk_policy_versions_policy_id_policies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('policy_id', 'version', name=op.f('pk_policy_versions'))
    )
    op.create_table('tenant_policy_defaults',
    sa.Column('tenant_id', sa.String(length=32), nullable=False),
    sa.Column('policy_id', sa.String(length=40), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['policy_id'], ['policies.id'], name=op.f('fk_tenant_policy_defaults_policy_id_policies'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], name=op.f('fk_tenant_policy_defaults_tenant_id_tenants'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('tenant_id', name=op.f('pk_tenant_policy_defaults'))
    )
    with op.batch_alter_table('moderation_traces', schema=None) as batch_op:
        batch_op.add_column(sa.Column('policy_id', sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column('policy_version', sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('moderation_traces', schema=None) as batch_op:
        batch_op.drop_column('policy_version')
        batch_op.drop_column('policy_id')
    op.drop_table('tenant_policy_defaults')
    op.drop_table('policy_versions')
    with op.batch_alter_table('policies', schema=None) as batch_op:
        batch_op.drop_index('ix_policies_tenant_id_created_at')
    op.drop_table('policies')
