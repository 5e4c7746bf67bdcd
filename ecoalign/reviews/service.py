"""The review queue as a service: what the moderation path, the API and the metrics call.

* ``open_review``: the one way a moderation result becomes a review task (the item itself is kept, so the
  reviewer sees what the machine saw; idempotent per machine decision).
* ``claim`` / ``decide``: a lease of ``lease_s`` per reviewer (conditional UPDATEs, ``ecoalign.store.reviews``);
  the verdict is stored as its own row, the machine's decision is never changed.
* ``result_view``: a moderation result as it stands: the machine's decision, the latest human verdict, the history.
* ``agreement``: the machine's agreement with reviewers, per category, from stored decisions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from ecoalign.categories import MODERATION_CATEGORIES
from ecoalign.content import Request
from ecoalign.reviews.errors import InvalidReview, LeaseHeld, LeaseNotHeld, ReviewNotFound
from ecoalign.store import reviews as store
from ecoalign.store.base import utcnow
from ecoalign.store.review_models import VERDICTS, ReviewDecision, ReviewStatus, ReviewTask
from ecoalign.webhooks.outbox import review_opened

MAX_NOTE_CHARS = 4000


def suspected_categories(result: dict[str, Any]) -> list[str]:
    """The categories a task is filed under: those the machine flagged, else its highest-scoring one."""
    flagged = [k for k, v in result.get("categories", {}).items() if v]
    if flagged:
        return sorted(flagged)
    scores = result.get("category_scores", {})
    top = max(scores, key=lambda k: scores[k], default=None)
    return [top] if top is not None and scores[top] > 0 else []


def item_of(request: Request) -> dict[str, Any]:
    """The item as a review task keeps it: its text and images (data URLs, for the reviewer's page)."""
    return {
        "text": request.text,
        "images": [{"media_type": img.media_type, "data_url": img.data_url(), "source": img.source}
                   for img in request.images],
    }


def open_review(
    session: Session,
    *,
    tenant_id: str,
    request: Request,
    result: dict[str, Any],
    reason: str,
    run_id: str | None = None,
    custom_id: str | None = None,
    policy_id: str | None = None,
    policy_version: int | None = None,
) -> str | None:
    """Open the review task of one moderation ``result`` (an OpenAI result object with its ``ecoalign``
    extension) in the caller's transaction. Returns its id, or None if that decision has a task already."""
    tags = suspected_categories(result)
    task_id = f"rev-{result['ecoalign']['trace_id']}"
    opened = store.insert_task(
        session,
        {
            "id": task_id,
            "tenant_id": tenant_id,
            "trace_id": result["ecoalign"]["trace_id"],
            "run_id": run_id,
            "custom_id": custom_id,
            "policy_id": policy_id,
            "policy_version": policy_version,
            "reason": reason,
            "status": ReviewStatus.PENDING.value,
            "category_tags": "," + "".join(f"{t}," for t in tags),
            "machine_flagged": bool(result["flagged"]),
            "machine_result": result,
            "item": item_of(request),
            "claims": 0,
            "created_at": utcnow(),
        },
    )
    if opened is not None:  # the webhook event in the same transaction as the task (none for a task that existed)
        review_opened(session, tenant_id, opened, {
            "status": ReviewStatus.PENDING.value, "reason": reason, "trace_id": result["ecoalign"]["trace_id"],
            "run_id": run_id, "custom_id": custom_id, "categories": tags,
            "policy": None if policy_id is None else {"id": policy_id, "version": policy_version},
        })
    return opened


def claim(session: Session, tenant_id: str, task_id: str, reviewer: str, *, lease_s: float) -> ReviewTask:
    """Lease the task to ``reviewer``; ``LeaseHeld`` if another reviewer holds it or it is decided."""
    if store.claim(session, tenant_id, task_id, reviewer, lease_s=lease_s):
        return _existing(session, tenant_id, task_id)
    task = store.get_task(session, tenant_id, task_id)
    if task is None:
        raise ReviewNotFound("no such review task")
    if task.status == ReviewStatus.DECIDED.value:
        raise LeaseHeld("the task is decided already")
    raise LeaseHeld(f"another reviewer holds this task until {task.lease_expires_at.isoformat()}"
                    if task.lease_expires_at else "another reviewer holds this task")


def check_verdict(verdict: str, categories: Sequence[str], note: str | None) -> list[str]:
    if verdict not in VERDICTS:
        raise InvalidReview("verdict", f"verdict must be one of {', '.join(VERDICTS)}, got {verdict!r}")
    unknown = sorted(set(categories) - set(MODERATION_CATEGORIES))
    if unknown:
        raise InvalidReview("categories", f"unknown categories: {', '.join(unknown)}")
    if verdict == "allow" and categories:
        raise InvalidReview("categories", "an allow verdict names no category")
    if note is not None and len(note) > MAX_NOTE_CHARS:
        raise InvalidReview("note", f"the note is over {MAX_NOTE_CHARS} characters")
    return sorted(set(categories))


def decide(
    session: Session,
    tenant_id: str,
    task_id: str,
    reviewer: str,
    *,
    verdict: str,
    categories: Sequence[str],
    note: str | None,
) -> ReviewDecision:
    """Record ``reviewer``'s verdict; only the holder of a live lease may (``LeaseNotHeld`` otherwise)."""
    chosen = check_verdict(verdict, categories, note)
    decision = store.decide(session, tenant_id, task_id, reviewer, verdict=verdict, categories=chosen, note=note)
    if decision is not None:
        return decision
    task = store.get_task(session, tenant_id, task_id)
    if task is None:
        raise ReviewNotFound("no such review task")
    if task.status == ReviewStatus.DECIDED.value:
        raise LeaseNotHeld("the task is decided already")
    raise LeaseNotHeld("claim the task first: only the reviewer holding its lease may decide")


def reopen(session: Session, tenant_id: str, task_id: str) -> ReviewTask:
    if not store.reopen(session, tenant_id, task_id):
        task = store.get_task(session, tenant_id, task_id)
        if task is None:
            raise ReviewNotFound("no such review task")
        raise LeaseHeld("only a decided task can be reopened")
    return _existing(session, tenant_id, task_id)


def _existing(session: Session, tenant_id: str, task_id: str) -> ReviewTask:
    """The task a conditional update has just changed in this transaction (so it exists)."""
    task = store.get_task(session, tenant_id, task_id)
    if task is None:
        raise ReviewNotFound("no such review task")
    return task


def decision_view(d: ReviewDecision) -> dict[str, Any]:
    return {
        "id": d.id,
        "reviewer": d.reviewer,
        "verdict": d.verdict,
        "flagged": d.verdict != "allow",
        "categories": list(d.categories),
        "note": d.note,
        "created_at": int(d.created_at.timestamp()),
        "seconds_to_decision": round(d.seconds_to_decision, 3),
    }


def task_view(task: ReviewTask, decisions: Sequence[ReviewDecision] = (), *, detail: bool = False,
              trace: dict[str, Any] | None = None) -> dict[str, Any]:
    """A task as the API shows it; ``detail`` adds the item, the machine's trace and the decision history."""
    now = utcnow()
    leased = task.status == ReviewStatus.CLAIMED.value and task.lease_expires_at is not None \
        and task.lease_expires_at >= now
    status = task.status if task.status != ReviewStatus.CLAIMED.value or leased else ReviewStatus.PENDING.value
    view: dict[str, Any] = {
        "id": task.id,
        "object": "review_task",
        "status": status,
        "trace_id": task.trace_id,
        "reason": task.reason,
        "categories": [t for t in task.category_tags.split(",") if t],
        "policy": {"id": task.policy_id, "version": task.policy_version},
        "run_id": task.run_id,
        "custom_id": task.custom_id,
        "machine": task.machine_result,
        "lease": {"owner": task.lease_owner, "expires_at": int(task.lease_expires_at.timestamp())}
        if leased and task.lease_expires_at is not None else None,
        "created_at": int(task.created_at.timestamp()),
        "decided_at": int(task.decided_at.timestamp()) if task.decided_at else None,
    }
    if detail:
        view["item"] = task.item
        view["trace"] = trace
        view["history"] = [decision_view(d) for d in decisions]
    return view


def result_view(session: Session, tenant_id: str, trace_id: str) -> dict[str, Any]:
    """A moderation result as it stands: the machine's decision (as it was made), the latest human verdict, and
    every verdict in order."""
    trace = store.trace_of(session, tenant_id, trace_id)
    task = store.task_of_trace(session, tenant_id, trace_id)
    if trace is None and task is None:
        raise ReviewNotFound("no such moderation result")
    machine = trace.result if trace is not None else task.machine_result  # type: ignore[union-attr]
    decisions = store.decisions_of(session, tenant_id, trace_id=trace_id)
    history = [decision_view(d) for d in decisions]
    return {
        "object": "moderation_result",
        "trace_id": trace_id,
        "machine": machine,
        "human": history[-1] if history else None,
        "flagged": history[-1]["flagged"] if history else bool(machine["flagged"]),
        "review": None if task is None else {"id": task.id, "status": task_view(task)["status"]},
        "history": history,
    }


@dataclass(frozen=True)
class Agreement:
    agree: int
    total: int


def agreement(rows: Sequence[tuple[float, bool, str, list[str], dict[str, Any]]]) -> dict[str, Agreement]:
    """Per category, how often the machine agreed with the reviewer, over the decisions where either marked it;
    ``"flagged"`` is the agreement on flagged/not flagged over every decision."""
    out: dict[str, list[int]] = {"flagged": [0, 0]}
    for _, machine_flagged, verdict, human, machine in rows:
        cell = out["flagged"]
        cell[0] += machine_flagged == (verdict != "allow")
        cell[1] += 1
        machine_marked = {k for k, v in machine.items() if v}
        for key in machine_marked | set(human):
            cell = out.setdefault(key, [0, 0])
            cell[0] += (key in machine_marked) == (key in human)
            cell[1] += 1
    return {k: Agreement(a, t) for k, (a, t) in out.items()}
