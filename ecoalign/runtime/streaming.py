"""What a streaming chat completion reads of its job while it waits, and what it does when its client leaves.

The stream sends no text of the answer until the job is terminal (the search has chosen its path, every unsafe
node pruned); meanwhile it can say how far the search is (nodes explored, tokens spent). A client that goes away
before the end cancels the job: its in-flight nodes fail and its reservations are released
(``repository.cancel_job``), so nobody pays for an answer nobody reads.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ecoalign.store import repository
from ecoalign.store.models import Job, JobStatus, NodeRow

DISCONNECT_REASON = "client disconnected"


@dataclass(frozen=True)
class Progress:
    """The job now: its status, nodes explored so far, tokens spent, and the row once it is terminal."""

    status: str
    nodes: int
    tokens: int
    job: Job | None = None

    def as_event(self) -> dict[str, object]:
        return {"status": self.status, "nodes_explored": self.nodes, "tokens_spent": self.tokens}


def read_progress(session: Session, job_id: str) -> Progress:
    """One read of the job's row (and a count of its nodes while it runs)."""
    job = repository.get_job(session, job_id)
    if job is None:
        raise repository.NotFound(f"no job {job_id}")
    if JobStatus(job.status).terminal:
        return Progress(job.status, 0, job.budget_spent, job)
    nodes = session.execute(select(func.count()).select_from(NodeRow).where(NodeRow.job_id == job_id)).scalar_one()
    return Progress(job.status, int(nodes), job.budget_spent)


def cancel_abandoned(session: Session, job_id: str) -> bool:
    """The client of a streaming completion went away: cancel its job (False if it had already ended)."""
    return repository.cancel_job(session, job_id, reason=DISCONNECT_REASON)
