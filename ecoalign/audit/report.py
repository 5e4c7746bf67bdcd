"""What an audit found, in total: the counts, the process-blind rate and the disagreements with the original scores,
as a JSON summary (stored on the run, returned by the API) and as the table ``ecoalign audit`` prints on stderr."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ecoalign.audit.scoring import TraceAudit

MAX_ERRORS_KEPT = 20  # the summary names this many failed traces; every one is in the run's results


@dataclass
class AuditSummary:
    evaluator: str
    aggregate: str
    tau: float
    traces: int = 0
    scored: int = 0
    failed: int = 0
    process_blind: int = 0
    unsafe_paths: int = 0
    unsafe_answers: int = 0
    compared: int = 0  # traces that had original scores to compare with
    disagreements: int = 0  # of those, how many reach another verdict (path safe, or process-blind)
    steps_compared: int = 0
    steps_changed: int = 0  # steps whose safe/unsafe verdict at tau changed
    tokens: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def add(self, audit: TraceAudit) -> None:
        self.traces += 1
        self.scored += 1
        v = audit.verdict
        self.process_blind += v.process_blind
        self.unsafe_paths += not audit.path_safe
        self.unsafe_answers += v.answer_safety < self.tau
        self.tokens += audit.tokens
        if audit.original is not None:
            self.compared += 1
            self.disagreements += audit.disagrees
            self.steps_compared += min(len(audit.original["step_safeties"]), len(audit.step_safeties))
            self.steps_changed += len(audit.changed_steps)

    def add_error(self, position: int, trace_id: str | None, message: str) -> None:
        self.traces += 1
        self.failed += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append({"position": position, "id": trace_id, "error": message})

    @property
    def process_blind_rate(self) -> float | None:
        return self.process_blind / self.scored if self.scored else None

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        rate = self.process_blind_rate
        out["process_blind_rate"] = None if rate is None else round(rate, 6)
        return out

    def table(self) -> str:
        rate = self.process_blind_rate
        rows = [
            ("evaluator", self.evaluator),
            ("aggregate / tau", f"{self.aggregate} / {self.tau:g}"),
            ("traces", self.traces),
            ("scored", self.scored),
            ("failed", self.failed),
            ("process-blind", f"{self.process_blind} ({'-' if rate is None else f'{rate:.1%}'})"),
            ("unsafe paths", self.unsafe_paths),
            ("unsafe answers", self.unsafe_answers),
            ("compared with original", self.compared),
            ("verdict disagreements", self.disagreements),
            ("steps changed / compared", f"{self.steps_changed} / {self.steps_compared}"),
            ("judge tokens", self.tokens),
        ]
        width = max(len(name) for name, _ in rows)
        return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
