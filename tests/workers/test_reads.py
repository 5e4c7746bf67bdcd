"""The lean reads the workers use (``ecoalign.store.reads``) give exactly what ``repository.load_graph`` gives."""

from __future__ import annotations

import pytest
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Request
from ecoalign.emulator import EmulatorServer
from ecoalign.engine.policy import Policy
from ecoalign.evaluators.heuristic import HeuristicNodeEvaluator, HeuristicScanner
from ecoalign.providers.openai_http import OpenAIChatProvider
from ecoalign.runtime import controller
from ecoalign.runtime.inprocess import run_job
from ecoalign.runtime.services import Services
from ecoalign.store import reads, repository
from ecoalign.store.db import run_in_transaction


@pytest.fixture(scope="module")
def services() -> Services:
    with EmulatorServer() as emulator:
        provider = OpenAIChatProvider(emulator.base_url, "ecoalign-emulator")
        yield Services(provider, HeuristicScanner(), HeuristicNodeEvaluator(), closers=[provider.close])
        provider.close()


def test_lean_graph_and_lineage_match_the_repository(db: sessionmaker[Session], services: Services) -> None:
    job_id, _ = run_in_transaction(
        db, lambda s: controller.submit(s, Request("How do I pick a lock on my own shed?"), Policy(budget=6000))
    )
    assert run_job(db, services, job_id) == "succeeded"
    with db() as s:
        full = repository.load_graph(s, job_id)
        lean = reads.load_graph(s, job_id)
        assert [vars(n) for n in lean] == [vars(n) for n in full]
        assert len(full) > 5
        for node in full:
            lineage, row = reads.load_lineage_with_row(s, job_id, node.id)
            assert [n.id for n in lineage] == [n.id for n in full.lineage(node.id)]
            assert all(vars(n) == vars(full[n.id]) for n in lineage)
            assert row is not None and row.id == node.id and row.attempts >= 1
