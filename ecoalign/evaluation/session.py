"""One evaluation run: a store, the services, a judge and a runner, then the table. The one place both the
simulation and the real-data evaluation go through."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.engine.policy import Policy
from ecoalign.evaluation.items import EvalItem
from ecoalign.evaluation.judging import Judge
from ecoalign.evaluation.metrics import summarize
from ecoalign.evaluation.runner import Plan, Runner, ServicesFor
from ecoalign.evaluation.simulation import (
    SimulatedJudge,
    SimulatedModel,
    SimulatedScanner,
    SimulatedWorld,
    SimulationConfig,
    WorldJudge,
)
from ecoalign.runtime.services import Services

DB_FILE = "eval.db"


@dataclass
class Evaluation:
    """What an evaluation produced: every per-item record and the per-method table."""

    records: list[dict[str, Any]]
    table: dict[str, dict[str, Any]]


@contextmanager
def store(db_url: str | None, out_dir: Path) -> Iterator[sessionmaker[Session]]:
    """The store jobs run on: ``db_url`` (SQLite or Postgres), else a SQLite file in the output folder."""
    from ecoalign.store.db import make_engine, session_factory
    from ecoalign.store.migrate import ensure_schema

    out_dir.mkdir(parents=True, exist_ok=True)
    url = db_url or f"sqlite:///{(out_dir / DB_FILE).resolve()}"
    ensure_schema(url)
    engine = make_engine(url)
    try:
        yield session_factory(engine)
    finally:
        engine.dispose()


def evaluate(
    factory: sessionmaker[Session],
    services: ServicesFor,
    judge: Judge,
    out_dir: Path,
    plan: Plan,
    *,
    progress: Any = None,
) -> Evaluation:
    records = Runner(factory, services, judge, out_dir, progress=progress).run(plan)
    return Evaluation(records, summarize(records, plan.methods))


def simulation_services(world: SimulatedWorld) -> tuple[ServicesFor, Judge]:
    """A fresh model for every (item, method) pair (its draws count calls per prompt, see ``SimulatedModel``), one
    scanner and judge for all."""
    scanner, evaluator = SimulatedScanner(world), SimulatedJudge(world)

    def services_for(item: EvalItem, method: str) -> Services:
        return Services(SimulatedModel(world), scanner, evaluator)

    return services_for, WorldJudge(world)


def simulate(
    config: SimulationConfig,
    methods: Sequence[str],
    policy: Policy,
    out_dir: Path,
    *,
    db_url: str | None = None,
    concurrency: int = 1,
    items: Sequence[EvalItem] | None = None,
    progress: Any = None,
) -> Evaluation:
    """Run ``methods`` on the simulated world of ``config`` (labelled a simulation wherever it is reported)."""
    world = SimulatedWorld(config)
    services, judge = simulation_services(world)
    plan = Plan(items or world.eval_items(), tuple(methods), policy, concurrency=concurrency,
                model_key=f"simulation:{config.to_dict()}")
    with store(db_url, out_dir) as factory:
        return evaluate(factory, services, judge, out_dir, plan, progress=progress)
