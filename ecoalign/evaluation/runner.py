"""Run every (item, method) pair as a real job through the runtime (controller, node work, store) and record one
JSON line per pair; a rerun with the same output folder skips the pairs already recorded (resumable).

Job ids are deterministic (a hash of the item's content, the method, its policy and the model): the same pair
plans the same node ids, so the seed each model call gets is the same in every run, and a job found in the store
already finished (a run killed after the job ended but before its line was written) is read back, not redone.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.engine.policy import Policy
from ecoalign.evaluation.items import EvalItem
from ecoalign.evaluation.judging import Judge, Verdict
from ecoalign.evaluation.methods import method_policy
from ecoalign.runtime import controller, nodework
from ecoalign.runtime.commit import commit
from ecoalign.runtime.inprocess import StuckJob, run_job, run_node
from ecoalign.runtime.services import Services
from ecoalign.store import repository
from ecoalign.store.db import run_in_transaction
from ecoalign.store.models import JobStatus

RESULTS_FILE = "items.jsonl"
ServicesFor = Callable[[EvalItem, str], Services]  # the adapters of one (item, method) pair
_ID_NAMESPACE = uuid.UUID("6f1d0c1e-8a0b-4f59-9d3e-5b7e0ad1e112")


@dataclass(frozen=True)
class Plan:
    """What to run: the items, the methods, the policy, how many jobs at once and how many node threads each."""

    items: Sequence[EvalItem]
    methods: Sequence[str]
    policy: Policy
    concurrency: int = 1
    node_workers: int = 1  # 1: a job's nodes run one at a time in a fixed order (``run_sequentially``)
    model_key: str = ""  # part of the job ids: a different model is a different job


def job_id_for(item: EvalItem, method: str, policy: Policy, plan: Plan) -> str:
    key = "|".join(
        [
            item.custom_id,
            item.request.fingerprint(),
            method,
            json.dumps(policy.to_dict(), sort_keys=True),
            plan.model_key,
        ]
    )
    return uuid.uuid5(_ID_NAMESPACE, hashlib.sha256(key.encode()).hexdigest()).hex  # 32 characters, as new_id()


def load_records(out_dir: Path) -> list[dict[str, Any]]:
    """The recorded lines (a half-written last line from a killed run is ignored)."""
    path = out_dir / RESULTS_FILE
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


class Runner:
    """Runs a ``Plan`` on one store and one set of services; ``run`` returns every record, old and new."""

    def __init__(
        self,
        factory: sessionmaker[Session],
        services: ServicesFor,
        judge: Judge,
        out_dir: Path,
        *,
        progress: Callable[[int], Any] | None = None,
    ) -> None:
        self.factory = factory
        self.services = services
        self.judge = judge
        self.out_dir = out_dir
        self.progress = progress
        self._lock = threading.Lock()

    @staticmethod
    def expected(plan: Plan) -> dict[tuple[str, str], str]:
        """The job id of every (item, method) pair of the plan."""
        return {
            (item.custom_id, method): job_id_for(item, method, method_policy(method, plan.policy), plan)
            for item in plan.items
            for method in plan.methods
        }

    def run(self, plan: Plan) -> list[dict[str, Any]]:
        """Run the pairs not yet recorded under their current job id; returns the plan's records (a line recorded
        under another job id, e.g. by an older policy, is not the plan's)."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        expected = self.expected(plan)
        records = [r for r in load_records(self.out_dir) if _same_job(expected.get((r["custom_id"], r["method"])), r)]
        done = {(r["custom_id"], r["method"]) for r in records}
        todo = [(item, method) for item in plan.items for method in plan.methods
                if (item.custom_id, method) not in done]
        with ThreadPoolExecutor(max(1, plan.concurrency), thread_name_prefix="ecoalign-eval") as pool:
            futures = [pool.submit(self.run_pair, item, method, plan) for item, method in todo]
            for future in as_completed(futures):
                record = future.result()
                self._append(record)
                records.append(record)
                if self.progress is not None:
                    self.progress(1)
        latest = {(r["custom_id"], r["method"]): r for r in records}  # a retried pair: its last line
        return list(latest.values())

    def _append(self, record: dict[str, Any]) -> None:
        with self._lock, (self.out_dir / RESULTS_FILE).open("a", encoding="utf-8") as out:
            out.write(json.dumps(record, sort_keys=True) + "\n")

    def run_pair(self, item: EvalItem, method: str, plan: Plan) -> dict[str, Any]:
        policy = method_policy(method, plan.policy)
        job_id = job_id_for(item, method, policy, plan)
        factory = self.factory
        started = time.perf_counter()

        def submit(job_id: str) -> bool:
            return run_in_transaction(
                factory, lambda s: controller.submit(s, item.request, policy, strategy=method, job_id=job_id)
            )[1]

        if not submit(job_id) and not _terminal(factory, job_id):
            controller.fail_job(factory, job_id, "left unfinished by an interrupted evaluation run")
            job_id = f"{job_id[:-4]}{uuid.uuid4().hex[:4]}"  # a fresh attempt of this pair
            submit(job_id)
        if not _terminal(factory, job_id):
            services = self.services(item, method)
            if plan.node_workers == 1:
                run_sequentially(factory, services, job_id)
            else:
                run_job(factory, services, job_id, workers=plan.node_workers)
        wall = time.perf_counter() - started
        return self._record(factory, item, method, job_id, policy, wall)

    def _record(
        self, factory: sessionmaker[Session], item: EvalItem, method: str, job_id: str, policy: Policy, wall_s: float
    ) -> dict[str, Any]:
        def read(session: Session) -> tuple[Any, list[Any]]:
            return repository.get_job(session, job_id), repository.load_nodes(session, job_id)

        job, nodes = run_in_transaction(factory, read)
        decision = job.decision or "failed"
        response = job.response or ""
        verdict = self.judge.judge(item, decision, response) if job.status == "succeeded" else Verdict(False, 0.0)
        chosen = set(job.path or [])
        path_steps = [n.safety for n in nodes if n.id in chosen and n.kind != "root" and n.safety is not None]
        model_s = sum(float((n.gen_ai or {}).get("ecoalign.latency_s", 0.0)) for n in nodes)
        return {
            "custom_id": item.custom_id,
            "method": method,
            "label": item.label,
            "job_id": job_id,
            "status": job.status,
            "decision": decision,
            "reason": job.reason,
            "tokens": job.budget_spent,
            "budget": policy.budget,
            "model_calls": job.model_calls,
            "nodes": len(nodes),
            "pruned": sum(1 for n in nodes if n.status == "pruned"),
            "path_safety": job.path_safety,
            "path_min_step_safety": min(path_steps) if path_steps else None,
            "path_depth": len(path_steps),
            "utility_engine": job.utility,
            "harmful": verdict.harmful,
            "utility": verdict.utility,
            "wall_s": round(wall_s, 4),
            "model_s": round(model_s, 4),
            "response": response[:2000],
        }


def _terminal(factory: sessionmaker[Session], job_id: str) -> bool:
    job = run_in_transaction(factory, lambda s: repository.get_job(s, job_id))
    return job is not None and JobStatus(job.status).terminal


def run_sequentially(factory: sessionmaker[Session], services: Services, job_id: str) -> str:
    """Drive the job with the same controller and node work as ``runtime.inprocess.run_job``, one node at a time,
    always the first pending one (creation order): the engine sees the same sequence of graphs in every run, which
    a thread pool (whose nodes finish in any order) cannot promise. What a seeded simulation's reproducibility
    rests on."""
    while True:
        decision = controller.advance(factory, job_id)
        if decision.finished:
            return decision.status
        if not decision.run:
            raise StuckJob(f"job {job_id}: the engine waits but no node is pending")
        node_id = decision.run[0]
        try:
            run_node(factory, services, job_id, node_id)
        except Exception as exc:  # as run_job: an evaluator bug fails the node, the job goes on
            commit(factory, nodework.NodeFailure(job_id, node_id, None, f"{type(exc).__name__}: {exc}"))


def _same_job(expected: str | None, record: dict[str, Any]) -> bool:
    """The record is of the expected job, or of a fresh attempt of it (same id but the last 4 characters)."""
    return expected is not None and str(record.get("job_id", ""))[:-4] == expected[:-4]
