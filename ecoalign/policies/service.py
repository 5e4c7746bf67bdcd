"""A tenant's policies as a service: create one (version 1), add a version, read them, and resolve the policy a
moderation request is decided under: the one it names (its latest version, or the version it names), else the
tenant's default, else the built-in policy (``default``, version 0).

Runs inside the caller's session (the API's request transaction, a Batch line's); every statement is in
``ecoalign.store.policies``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from ecoalign.moderation.policy import ModerationPolicy
from ecoalign.policies.schema import PolicyDocument
from ecoalign.store import policies as store
from ecoalign.store.pagination import InvalidCursor, Page
from ecoalign.store.policy_models import Policy, PolicyVersion


class PolicyNotFound(LookupError):
    """The tenant has no such policy (or no such version of it)."""

    def __init__(self, policy_id: str, version: int | None = None) -> None:
        what = f"policy {policy_id!r}" + (f" version {version}" if version is not None else "")
        super().__init__(f"no such {what}")
        self.policy_id = policy_id
        self.version = version


class UnknownPolicyChoice(PolicyNotFound):
    """A moderation request names a policy (or version) its tenant does not have."""


class UnknownPolicyCursor(ValueError):
    """``after`` names no policy of the tenant."""


@dataclass(frozen=True)
class VersionView:
    policy_id: str
    version: int
    document: dict[str, Any]
    created_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "object": "policy.version",
            "policy_id": self.policy_id,
            "version": self.version,
            "document": self.document,
            "created_at": int(self.created_at.timestamp()),
        }


@dataclass(frozen=True)
class PolicyView:
    id: str
    name: str
    latest_version: int
    is_default: bool
    created_at: datetime
    latest: VersionView | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "object": "policy",
            "name": self.name,
            "latest_version": self.latest_version,
            "default": self.is_default,
            "created_at": int(self.created_at.timestamp()),
        }
        if self.latest is not None:
            out["latest"] = self.latest.to_json()
        return out


def _version(row: PolicyVersion) -> VersionView:
    return VersionView(row.policy_id, row.version, dict(row.document), row.created_at)


def _view(session: Session, row: Policy, default_id: str | None, latest: PolicyVersion | None = None) -> PolicyView:
    return PolicyView(
        row.id, row.name, row.latest_version, row.id == default_id, row.created_at,
        _version(latest) if latest is not None else None,
    )


def create_policy(
    session: Session, tenant_id: str, name: str, document: PolicyDocument, *, make_default: bool = False
) -> PolicyView:
    """A new policy whose version 1 is ``document``; the tenant's default if asked, or if it is its first."""
    row, version = store.insert_policy(session, tenant_id, name, document.model_dump(mode="json"))
    if make_default or store.default_policy_id(session, tenant_id) is None:
        store.set_default(session, tenant_id, row.id)
    return _view(session, row, store.default_policy_id(session, tenant_id), version)


def add_version(
    session: Session, tenant_id: str, policy_id: str, document: PolicyDocument, *, make_default: bool = False
) -> VersionView:
    """The policy's next version; earlier versions stay as they were (and results keep naming them)."""
    row = store.insert_next_version(session, tenant_id, policy_id, document.model_dump(mode="json"))
    if row is None:
        raise PolicyNotFound(policy_id)
    if make_default:
        store.set_default(session, tenant_id, policy_id)
    return _version(row)


def get_policy(session: Session, tenant_id: str, policy_id: str) -> PolicyView:
    row = store.get_policy(session, tenant_id, policy_id)
    if row is None:
        raise PolicyNotFound(policy_id)
    latest = store.get_version(session, tenant_id, policy_id, None)
    return _view(session, row, store.default_policy_id(session, tenant_id), latest)


def get_version(session: Session, tenant_id: str, policy_id: str, version: int) -> VersionView:
    row = store.get_version(session, tenant_id, policy_id, version)
    if row is None:
        raise PolicyNotFound(policy_id, version)
    return _version(row)


def list_policies(session: Session, tenant_id: str, *, limit: int, after: str | None) -> tuple[list[PolicyView], Page]:
    """A page of the tenant's policies (newest first) and the page itself (for its cursor)."""
    try:
        page = store.policy_page(session, tenant_id, limit, after)
    except InvalidCursor:
        raise UnknownPolicyCursor(f"unknown cursor {after!r}") from None
    default_id = store.default_policy_id(session, tenant_id)
    return [_view(session, r, default_id) for r in page.items], page


def resolve(
    session: Session, tenant_id: str | None, policy_id: str | None = None, version: int | None = None
) -> ModerationPolicy:
    """The policy a request is decided under: the one named, else the tenant's default, else the built-in one."""
    if tenant_id is None:
        return ModerationPolicy()
    if policy_id is None:
        policy_id = store.default_policy_id(session, tenant_id)
        if policy_id is None:
            return ModerationPolicy()
    row = store.get_version(session, tenant_id, policy_id, version)
    if row is None:
        raise UnknownPolicyChoice(policy_id, version)
    return PolicyDocument.model_validate(row.document).to_policy(row.policy_id, row.version)
