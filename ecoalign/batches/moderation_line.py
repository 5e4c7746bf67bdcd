"""A ``/v1/moderations`` line: the scan, judge escalations within the line's and the batch's budget, and traces.

Judge tokens are charged to the tenant budget (``TenantRunBudget``) and capped per line
(``ECOALIGN_MODERATION_ITEM_BUDGET``) and per batch (``token_budget``, read when the line is claimed).
"""

from __future__ import annotations

from typing import Any

from ecoalign.batches.claim import Claimed
from ecoalign.batches.outcome import LineOutcome, answered, header_of, line_error, parse_error
from ecoalign.batches.runtime import BatchRuntime
from ecoalign.moderation.lines import LineError, build_task
from ecoalign.moderation.policy import ModerationPolicy
from ecoalign.moderation.service import moderate_for_tenant
from ecoalign.moderation.traces import trace_rows
from ecoalign.policies.service import UnknownPolicyChoice, resolve
from ecoalign.store.db import run_in_transaction

_URL_PREFIXES = ("data:", "https://", "http://")


def refers_to_a_path(obj: dict[str, Any]) -> bool:
    """Does a line of the CLI's simple form name an image that is not a URL (a path on this server)?"""
    if any(k in obj for k in ("method", "url", "body")):
        return False
    refs = obj.get("images", [])
    refs = [refs] if isinstance(refs, str) else refs
    return isinstance(refs, list) and any(not isinstance(r, str) or not r.startswith(_URL_PREFIXES) for r in refs)


def line_policy(rt: BatchRuntime, tenant_id: str | None, obj: dict[str, Any]) -> ModerationPolicy:
    """The policy a line is decided under: ``body.ecoalign.policy`` (an id, or ``{id, version}``) as in
    ``POST /v1/moderations``, else the tenant's default."""
    body = obj.get("body")
    options = body.get("ecoalign") if isinstance(body, dict) else None
    choice = options.get("policy") if isinstance(options, dict) else None
    policy_id: str | None = None
    version: int | None = None
    if isinstance(choice, str):
        policy_id = choice
    elif isinstance(choice, dict) and isinstance(choice.get("id"), str):
        policy_id = choice["id"]
        version = choice.get("version") if isinstance(choice.get("version"), int) else None
    elif choice is not None:
        raise UnknownPolicyChoice(str(choice))
    return run_in_transaction(rt.factory, lambda s: resolve(s, tenant_id, policy_id, version))


def moderation_line(rt: BatchRuntime, claimed: Claimed, raw: bytes) -> LineOutcome:
    """Moderate every input of the line, as ``POST /v1/moderations`` would answer it."""
    header = header_of(rt, claimed, raw)
    if isinstance(header, LineOutcome):
        return header
    if refers_to_a_path(header.obj):  # the simple form is accepted with URLs only, never a path
        return line_error(claimed, "invalid_image", "a batch line's images must be data: or https URLs (no paths)")
    built = build_task(header, rt.options())
    if isinstance(built, LineError):
        return parse_error(claimed, built)
    try:
        policy = line_policy(rt, claimed.tenant_id, header.obj)
    except UnknownPolicyChoice as exc:
        return line_error(claimed, "invalid_policy", str(exc))
    body, results = moderate_for_tenant(
        rt.engine, rt.factory, list(built.requests), tenant_id=claimed.tenant_id, budget=claimed.budget_left,
        item_budget=rt.settings.moderation_item_budget, run_id=claimed.batch_id, custom_id=claimed.custom_id,
        policy=policy,
    )
    return answered(body, sum(r.tokens for r in results),
                    trace_rows(claimed.batch_id, claimed.custom_id, claimed.tenant_id, results))
