"""Submitting a tenant's job: the up-front budget check, then ``controller.submit``. Shared by ``POST /v1/jobs``,
``POST /v1/chat/completions`` (api/routes) and the Batch API's chat lines (ecoalign/batches/chat_line.py).

Errors are domain errors, each with a stable ``code``; the API maps them to HTTP statuses (402, 429, 409) and a
batch line records the code in its error line.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from ecoalign.content import Request
from ecoalign.engine.graph import ThoughtGraph
from ecoalign.engine.policy import Policy
from ecoalign.engine.search import Search
from ecoalign.engine.strategies import get_strategy
from ecoalign.runtime import controller
from ecoalign.runtime.report import job_view
from ecoalign.store import repository, tenants

IdempotencyConflict = controller.IdempotencyConflict  # code: idempotency_conflict


class TenantBudgetExhausted(Exception):
    """The tenant cannot pay even a minimal job: its total budget (``daily`` False; code
    ``tenant_budget_exhausted``) or today's (``daily`` True; code ``tenant_daily_budget_exhausted``, and
    ``retry_after_s`` is the time until the day resets at 00:00 UTC)."""

    def __init__(self, message: str, *, daily: bool, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.daily = daily
        self.retry_after_s = retry_after_s

    @property
    def code(self) -> str:
        return "tenant_daily_budget_exhausted" if self.daily else "tenant_budget_exhausted"


def minimal_job_tokens(request: Request, policy: Policy, strategy: str) -> int:
    """Tokens of the cheapest job that produces an answer: one direct answer, capped by the job's own budget."""
    search = Search(policy, get_strategy(strategy), request_chars=len(request.text), image_count=len(request.images))
    graph = ThoughtGraph("estimate")
    root = graph.add_root(request.text)
    return max(1, min(policy.budget, search.estimate_tokens(graph, (root.id,), policy.answer_tokens)))


def check_tenant_budget(session: Session, tenant_id: str, needed: int) -> None:
    """Refuse up front a job the tenant could not pay even one answer for (the ledger enforces the rest)."""
    budget = tenants.remaining(session, tenant_id)
    if budget.covers(needed):
        return
    if budget.total_remaining is not None and budget.total_remaining < needed:
        raise TenantBudgetExhausted(
            f"the tenant's token budget has {max(budget.total_remaining or 0, 0)} tokens left; "
            f"a minimal job needs {needed}",
            daily=False,
        )
    tomorrow = datetime.combine(budget.day + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    raise TenantBudgetExhausted(
        f"the tenant's daily token budget has {max(budget.daily_remaining or 0, 0)} tokens left today (UTC); "
        f"a minimal job needs {needed}",
        daily=True,
        retry_after_s=max(1, int((tomorrow - datetime.now(UTC)).total_seconds())),
    )


def submit_tenant_job(
    session: Session,
    request: Request,
    policy: Policy,
    strategy: str,
    tenant_id: str,
    idempotency_key: str | None,
) -> tuple[dict[str, Any], bool]:
    """Create the tenant's job (or find the one this ``idempotency_key`` created): ``(job_view, created)``.

    The budget check is skipped for a replay (the job exists and was paid for). Raises ``TenantBudgetExhausted``
    or ``IdempotencyConflict`` (the key was used with another request). Runs in the caller's transaction.
    """
    replay = idempotency_key is not None and repository.job_for_key(session, tenant_id, idempotency_key) is not None
    if not replay:
        check_tenant_budget(session, tenant_id, minimal_job_tokens(request, policy, strategy))
    job_id, created = controller.submit(
        session, request, policy, strategy=strategy, tenant_id=tenant_id, idempotency_key=idempotency_key
    )
    job = repository.get_job(session, job_id)
    assert job is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
    return job_view(job), created
