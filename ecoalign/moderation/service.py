"""Moderation for a tenant: what ``POST /v1/moderations`` and a Batch moderation line both do with parsed
requests (the server's per-item budget, a run budget held on the tenant's budget, one ``Moderator``, duplicates
decided once per tenant and policy, and review tasks for what the machine could not settle)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Request
from ecoalign.moderation.decisions import BUDGET_ENDED
from ecoalign.moderation.dedup import deduplicator_for
from ecoalign.moderation.factory import ModerationEngine
from ecoalign.moderation.policy import ModerationPolicy
from ecoalign.moderation.result import ModerationResult, moderation_response
from ecoalign.moderation.tenant_budget import TenantRunBudget
from ecoalign.moderation.traces import trace_rows
from ecoalign.reviews.service import open_review
from ecoalign.store.db import run_in_transaction
from ecoalign.store.moderation_traces import store_traces


def moderate_for_tenant(
    engine: ModerationEngine,
    sessions: sessionmaker[Session],
    requests: list[Request],
    *,
    tenant_id: str | None,
    budget: int | None,
    item_budget: int,
    run_id: str | None = None,
    custom_id: str | None = None,
    policy: ModerationPolicy | None = None,
) -> tuple[dict[str, Any], list[ModerationResult]]:
    """The ``/v1/moderations`` response body for ``requests`` and its results (whose traces the caller stores in
    its own transaction); judge tokens are held on the tenant's budget before each call. ``policy`` is the one the
    request is decided under (``ecoalign.policies.service.resolve``); its budgets are capped by the server's.
    Content already decided under the same policy version is not decided again; items the policy sends to review,
    and items still uncertain when their budget ended, become review tasks (``run_id``: the batch, default the
    response id)."""
    policy = policy or ModerationPolicy()
    policy = replace(policy, item_budget=min(policy.item_budget, item_budget))
    run_total = budget if policy.run_budget is None else _min(budget, policy.run_budget)
    run_budget = TenantRunBudget(run_total, sessions, tenant_id)
    moderator = engine.moderator(policy, run_budget)
    moderator.dedup = deduplicator_for(
        sessions, engine.settings, policy=moderator.policy.to_dict(), model_id=moderator.model_id,
        tenant_id=tenant_id, policy_id=policy.policy_id, policy_version=policy.policy_version,
    )
    results = moderator.moderate_many(requests)
    response = moderation_response(results, moderator.model_id)
    if tenant_id is not None:
        open_reviews(
            sessions, tenant_id, requests, results, run_id=run_id or response["id"], custom_id=custom_id,
            policy_id=policy.policy_id, policy_version=policy.policy_version,
        )
    return response, results


def needs_review(result: ModerationResult) -> bool:
    """Whether a human should settle this result: the policy's action for it is ``review``, or the item was
    still uncertain when its budget ended."""
    return result.ecoalign.get("action") == "review" or result.decision in BUDGET_ENDED


def open_reviews(
    sessions: sessionmaker[Session],
    tenant_id: str,
    requests: Sequence[Request],
    results: Sequence[ModerationResult],
    *,
    run_id: str | None,
    custom_id: str | None = None,
    policy_id: str | None = None,
    policy_version: int | None = None,
) -> list[str]:
    """A review task for each result that needs one (``needs_review``), in one transaction; their ids."""
    chosen = [(q, r) for q, r in zip(requests, results, strict=True) if needs_review(r)]
    if not chosen:
        return []

    def write(session: Session) -> list[str]:
        opened = [
            open_review(
                session, tenant_id=tenant_id, request=q, result=r.to_openai(), reason=r.decision, run_id=run_id,
                custom_id=custom_id, policy_id=policy_id, policy_version=policy_version,
            )
            for q, r in chosen
        ]
        return [i for i in opened if i is not None]

    return run_in_transaction(sessions, write)


def moderate_request(
    engine: ModerationEngine,
    sessions: sessionmaker[Session],
    requests: list[Request],
    *,
    tenant_id: str,
    budget: int,
    item_budget: int,
    policy: ModerationPolicy | None = None,
) -> dict[str, Any]:
    """A ``POST /v1/moderations``: moderate, store the traces under the response id, return the response body."""
    response, results = moderate_for_tenant(
        engine, sessions, requests, tenant_id=tenant_id, budget=budget, item_budget=item_budget, policy=policy
    )
    rows = trace_rows(response["id"], None, tenant_id, results)
    run_in_transaction(sessions, lambda s: store_traces(s, rows))
    return response


def _min(a: int | None, b: int) -> int:
    return b if a is None else min(a, b)
