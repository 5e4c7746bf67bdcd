"""A worker's claim of a node and the read of its lineage, in one round trip on Postgres: a write, so it lives
here on the store's write side, not among the reads.

The claim is ``repository.claim_node``'s conditional ``UPDATE`` (same conditions); the lineage is
``reads.load_lineage``'s rows. On Postgres both are one statement (a data-modifying CTE joined with the lineage
read, tuned so that each step up the graph is an index lookup: see docs/store.md and tests/store/test_claims.py);
elsewhere the two calls run one after the other in the caller's transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from ecoalign.engine.graph import NodeStatus, ThoughtGraph
from ecoalign.store import repository
from ecoalign.store.models import ACTIVE_JOB_STATUSES
from ecoalign.store.reads import GRAPH_COLUMNS, NODE_ORDER, NODES, build_graph, load_lineage


def _claim_with_lineage_statement() -> Any:
    """Postgres: the claim (``repository.claim_statement``: same conditions) as a data-modifying CTE, and the
    lineage read joined to its result: one round trip, and no rows at all when the claim misses. The read sees the
    snapshot from before the update (the claimed node still pending); ``claim_lineage`` corrects the status. The
    recursion looks parents up on the index, fenced as in ``reads._lineage_statement``.

    Written as SQL: SQLAlchemy (2.1) cannot cache a select over an ``UPDATE`` CTE with literal values."""
    active = ", ".join(f"'{status}'" for status in ACTIVE_JOB_STATUSES)
    columns = ", ".join(f"nodes.{column.name}" for column in GRAPH_COLUMNS)
    order = ", ".join(f"nodes.{column.name}" for column in NODE_ORDER)
    return text(
        f"""
        WITH RECURSIVE claimed AS (
            UPDATE nodes SET status = 'running', attempts = nodes.attempts + 1, lease_expires_at = :b_lease,
                started_at = coalesce(nodes.started_at, :b_now)
            WHERE nodes.id = :b_node AND nodes.job_id = :b_job
                AND EXISTS (SELECT 1 FROM jobs WHERE jobs.id = :b_job AND jobs.status IN ({active}))
                AND (nodes.status = 'pending' OR (nodes.status = 'running' AND nodes.lease_expires_at < :b_now))
                AND nodes.failures < :b_cap AND nodes.attempts - nodes.failures < :b_crash_cap
            RETURNING nodes.attempts
        ), ancestors(id) AS (
            SELECT CAST(:b_node AS VARCHAR)
            UNION SELECT up.parent_id FROM ancestors CROSS JOIN LATERAL (
                SELECT edges.parent_id FROM edges WHERE edges.child_id = ancestors.id OFFSET 0
            ) AS up
        )
        SELECT {columns}, edges.parent_id AS parent, claimed.attempts AS claimed_attempt
        FROM nodes LEFT OUTER JOIN edges ON edges.child_id = nodes.id JOIN claimed ON true
        WHERE nodes.job_id = :b_job AND nodes.id IN (SELECT id FROM ancestors)
        ORDER BY {order}
        """  # noqa: S608 -- only module constants (statuses, column names) are interpolated; inputs are bound
    ).bindparams(
        bindparam("b_now", type_=NODES.c.started_at.type),
        bindparam("b_lease", type_=NODES.c.lease_expires_at.type),
    )


_CLAIM_WITH_LINEAGE = _claim_with_lineage_statement()


def claim_lineage(
    session: Session,
    job_id: str,
    node_id: str,
    *,
    lease_seconds: float,
    max_attempts: int | None = None,
    max_crashes: int | None = None,
    now: datetime | None = None,
) -> tuple[int, ThoughtGraph] | None:
    """``repository.claim_node`` and, if it won, ``reads.load_lineage``: (attempt, lineage); None if the claim missed.

    One statement on Postgres (the claim is a data-modifying CTE); two elsewhere.
    """
    if session.get_bind().dialect.name != "postgresql":
        attempt = repository.claim_node(
            session, job_id, node_id, lease_seconds=lease_seconds, max_attempts=max_attempts,
            max_crashes=max_crashes, now=now,
        )
        return None if attempt is None else (attempt, load_lineage(session, job_id, node_id))
    params = repository.claim_parameters(
        job_id, node_id, lease_seconds=lease_seconds, max_attempts=max_attempts, max_crashes=max_crashes, now=now
    )
    params.setdefault("b_cap", repository.NO_CAP)
    params.setdefault("b_crash_cap", repository.NO_CAP)
    rows = session.execute(_CLAIM_WITH_LINEAGE, params).all()
    if not rows:
        return None
    graph = build_graph(job_id, rows)
    graph[node_id].status = NodeStatus.RUNNING  # what the claim just wrote (the read saw the row before it)
    return int(rows[0].claimed_attempt), graph
