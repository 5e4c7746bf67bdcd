"""Moderation for a tenant: what ``POST /v1/moderations`` and a Batch moderation line both do with parsed
requests (the server's per-item budget, a run budget held on the tenant's budget, one ``Moderator``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Request
from ecoalign.moderation.factory import ModerationEngine
from ecoalign.moderation.policy import ModerationPolicy
from ecoalign.moderation.result import ModerationResult, moderation_response
from ecoalign.moderation.tenant_budget import TenantRunBudget
from ecoalign.moderation.traces import trace_rows
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
    policy: ModerationPolicy | None = None,
) -> tuple[dict[str, Any], list[ModerationResult]]:
    """The ``/v1/moderations`` response body for ``requests`` and its results (whose traces the caller stores in
    its own transaction); judge tokens are held on the tenant's budget before each call. ``policy`` is the one the
    request is decided under (``ecoalign.policies.service.resolve``); its budgets are capped by the server's."""
    policy = policy or ModerationPolicy()
    policy = replace(policy, item_budget=min(policy.item_budget, item_budget))
    run_total = budget if policy.run_budget is None else _min(budget, policy.run_budget)
    run_budget = TenantRunBudget(run_total, sessions, tenant_id)
    moderator = engine.moderator(policy, run_budget)
    results = moderator.moderate_many(requests)
    return moderation_response(results, moderator.model_id), results


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
