"""Every statement on the policy tables (``policy_models``): create a policy with version 1, add the next version,
read a policy or a version within its tenant, page a tenant's policies, and the tenant's default.

No statement updates a version's document: a version is immutable once written. The next version number is taken
by a conditional ``UPDATE ... RETURNING`` on the policy row, which locks it, so two writers get 2 and 3, never 2
twice.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ecoalign.store.base import new_id, utcnow
from ecoalign.store.pagination import Page, keyset_page
from ecoalign.store.policy_models import Policy, PolicyVersion, TenantPolicyDefault


def insert_policy(
    session: Session, tenant_id: str, name: str, document: dict[str, Any]
) -> tuple[Policy, PolicyVersion]:
    """A new policy and its version 1."""
    policy = Policy(id=f"pol_{new_id()[:24]}", tenant_id=tenant_id, name=name, latest_version=1, created_at=utcnow())
    session.add(policy)
    session.flush()
    version = PolicyVersion(policy_id=policy.id, version=1, document=document, created_at=utcnow())
    session.add(version)
    session.flush()
    return policy, version


def insert_next_version(
    session: Session, tenant_id: str, policy_id: str, document: dict[str, Any]
) -> PolicyVersion | None:
    """The policy's next version (None if the tenant has no such policy)."""
    number = session.execute(
        update(Policy)
        .where(Policy.id == policy_id, Policy.tenant_id == tenant_id)
        .values(latest_version=Policy.latest_version + 1)
        .returning(Policy.latest_version)
    ).scalar_one_or_none()
    if number is None:
        return None
    version = PolicyVersion(policy_id=policy_id, version=number, document=document, created_at=utcnow())
    session.add(version)
    session.flush()
    return version


def get_policy(session: Session, tenant_id: str, policy_id: str) -> Policy | None:
    return session.scalars(select(Policy).where(Policy.id == policy_id, Policy.tenant_id == tenant_id)).first()


def get_version(session: Session, tenant_id: str, policy_id: str, version: int | None) -> PolicyVersion | None:
    """A version of the tenant's policy (``None``: its latest)."""
    policy = get_policy(session, tenant_id, policy_id)
    if policy is None:
        return None
    number = policy.latest_version if version is None else version
    return session.get(PolicyVersion, (policy_id, number))


def policy_page(session: Session, tenant_id: str, limit: int, after: str | None = None) -> Page[Policy]:
    """The tenant's policies, newest first (``pagination.keyset_page``)."""
    return keyset_page(session, Policy, scope=[Policy.tenant_id == tenant_id], limit=limit, after=after)


def default_policy_id(session: Session, tenant_id: str) -> str | None:
    return session.scalars(
        select(TenantPolicyDefault.policy_id).where(TenantPolicyDefault.tenant_id == tenant_id)
    ).first()


def set_default(session: Session, tenant_id: str, policy_id: str) -> None:
    """Make ``policy_id`` the tenant's default (one row per tenant, replaced)."""
    row = session.get(TenantPolicyDefault, tenant_id, with_for_update=True)
    if row is None:
        session.add(TenantPolicyDefault(tenant_id=tenant_id, policy_id=policy_id, updated_at=utcnow()))
    else:
        row.policy_id, row.updated_at = policy_id, utcnow()
    session.flush()
