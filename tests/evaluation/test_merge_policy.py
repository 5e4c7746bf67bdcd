"""``Policy.allow_merge`` reaches the engine from the job's stored policy: the spec every worker (in-process or
Celery: both read ``runtime.jobspec``) builds its engine from, and a job run in-process grows merge thoughts."""

from __future__ import annotations

from pathlib import Path

from ecoalign.engine.policy import Policy
from ecoalign.evaluation.session import simulate, store
from ecoalign.evaluation.simulation import SimulationConfig
from ecoalign.runtime.jobspec import job_spec
from ecoalign.store import repository
from ecoalign.store.db import run_in_transaction


def test_the_stored_policy_sets_merging_in_the_job_spec(tmp_path: Path) -> None:
    from ecoalign.content import Request
    from ecoalign.runtime import controller

    with store(None, tmp_path) as factory:
        ids = {
            merge: run_in_transaction(
                factory, lambda s, m=merge: controller.submit(s, Request("hi"), Policy(allow_merge=m))
            )[0]
            for merge in (False, True)
        }
        specs = {m: run_in_transaction(factory, lambda s, i=i: job_spec(repository.get_job(s, i)))
                 for m, i in ids.items()}
    assert specs[True].engine.allow_merge is True
    assert specs[False].engine.allow_merge is False
    assert Policy.from_dict({}).allow_merge is False  # a policy stored before the setting existed


def test_a_job_with_merging_on_grows_a_thought_with_two_parents(tmp_path: Path) -> None:
    evaluation = simulate(SimulationConfig(items=30), ("ecoalign",), Policy(budget=10000, allow_merge=True), tmp_path)
    with store(None, tmp_path) as factory:
        merged = 0
        for record in evaluation.records:
            nodes = run_in_transaction(factory, lambda s, r=record: repository.load_nodes(s, r["job_id"]))
            merged += sum(1 for n in nodes if n.action == "merge")
    assert merged > 0
