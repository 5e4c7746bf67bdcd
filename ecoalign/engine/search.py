"""The search as a state machine: given the graph and the ledger, say what to do next.

``Search.step(graph, ledger)`` is a pure function of its inputs: it never calls a model, never touches a
database and keeps no memory between calls. The runtime executes the planned nodes (reserve → generate →
score → settle), writes the results into the graph, asks ``verdict`` whether each scored node stands or is
pruned, and calls ``step`` again. Because all state lives in the graph and the ledger, the same machine runs
in one process or across Celery workers, and a redelivered step plans the same node ids again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ecoalign.engine.graph import Node, NodeKind, NodeStatus, ThoughtGraph, node_id
from ecoalign.engine.metrics import PathMetrics, path_metrics, path_safety, scored_steps
from ecoalign.engine.pareto import pareto_front
from ecoalign.engine.policy import Policy
from ecoalign.engine.prompts import REFUSAL_TEMPLATE
from ecoalign.engine.strategies import ECOALIGN, Mode, Strategy
from ecoalign.engine.valuation import (
    NEG_INF,
    Action,
    ActionContext,
    ActionKind,
    Forecaster,
    RolloutForecaster,
    committed_tokens,
    gated_value,
    horizon,
)

TEMPLATE_ORDINAL = 1  # the template refusal that stands in when a model-written one fails or is unsafe
CHARS_PER_TOKEN = 3  # the same deliberately high estimate as ``prompts.estimate_prompt_tokens``
PROMPT_OVERHEAD_TOKENS = 160  # system prompt, instructions and message framing

# Enum members the per-node loops compare with are bound once (here, or in a local before the loop): on Python 3.11
# looking a member up on its class (``NodeKind.ROOT``) costs several times a global read.
_SOURCE_KINDS = frozenset({NodeKind.ROOT, NodeKind.THOUGHT})  # the nodes actions start from
_Memo = dict[tuple[str, ...], tuple[float, int]]  # one step's (path safety, prompt tokens) per action's sources


@dataclass(frozen=True)
class LedgerView:
    """The job's budget as the ledger sees it now."""

    total: int
    spent: int = 0
    reserved: int = 0

    @property
    def remaining(self) -> int:
        """R: what is neither spent nor promised to a call in flight."""
        return self.total - self.spent - self.reserved

    @property
    def unspent(self) -> int:
        """What has not been spent yet; it only ever falls, so the horizon built on it only ever shrinks."""
        return self.total - self.spent


@dataclass(frozen=True)
class PlannedNode:
    """A node the runtime must create (with this deterministic id) and then execute."""

    id: str
    kind: NodeKind
    parents: tuple[str, ...]
    depth: int
    ordinal: int
    action: str
    max_tokens: int
    est_tokens: int  # tokens to reserve before the call: prompt estimate + max completion + evaluation
    prefilled_text: str | None = None  # set for template refusals: no model call, no tokens
    reason: str | None = None  # why it was planned (a refusal's cause)

    def as_node(self) -> Node:
        return Node(
            id=self.id,
            kind=self.kind,
            parents=self.parents,
            depth=self.depth,
            ordinal=self.ordinal,
            status=NodeStatus.PENDING,
            est_tokens=self.est_tokens,
            reason=self.reason,
        )


@dataclass(frozen=True)
class ValuedAction:
    action: Action
    value: float
    horizon: int
    est_tokens: int  # what its own nodes reserve
    committed_tokens: int  # est_tokens plus, for a think or merge, the answer after it (what must fit the budget)


@dataclass(frozen=True)
class Outcome:
    decision: str  # "answered" | "refused"
    node_id: str
    path: tuple[str, ...]
    safety: float
    utility: float
    cost: int
    reason: str
    pareto: tuple[PathMetrics, ...] = ()


@dataclass(frozen=True)
class Step:
    """What the machine wants now: new nodes to run, or the final outcome, or nothing (wait for results)."""

    new: tuple[PlannedNode, ...] = ()
    outcome: Outcome | None = None
    considered: tuple[ValuedAction, ...] = ()
    note: str = ""

    @property
    def waiting(self) -> bool:
        return not self.new and self.outcome is None


@dataclass
class _Taken:
    """Which actions the graph already shows as taken (so a step never plans them twice)."""

    think: set[str] = field(default_factory=set)
    answer: set[str] = field(default_factory=set)
    merge: set[tuple[str, ...]] = field(default_factory=set)
    refusals: list[Node] = field(default_factory=list)

    @classmethod
    def of(cls, graph: ThoughtGraph) -> _Taken:
        taken = cls()
        refusal, answer, thought = NodeKind.REFUSAL, NodeKind.ANSWER, NodeKind.THOUGHT  # see _SOURCE_KINDS
        for n in graph:
            if n.kind is refusal:
                taken.refusals.append(n)
            elif n.kind is answer:
                taken.answer.add(n.parents[0])
            elif n.kind is thought:
                if len(n.parents) == 1:
                    taken.think.add(n.parents[0])
                else:
                    taken.merge.add(tuple(sorted(n.parents)))
        return taken


class Search:
    """One job's search machine. Cheap to build; build it anew for every step if you like."""

    def __init__(
        self,
        policy: Policy,
        strategy: Strategy = ECOALIGN,
        *,
        request_chars: int = 0,
        image_count: int = 0,
        forecaster: Forecaster | None = None,
        allow_merge: bool | None = None,
    ) -> None:
        """``allow_merge`` overrides the policy's setting (None: the policy's ``allow_merge``)."""
        self.policy = policy
        self.strategy = strategy
        self.request_chars = request_chars
        self.image_count = image_count
        self.allow_merge = policy.allow_merge if allow_merge is None else allow_merge
        self.forecaster = forecaster or RolloutForecaster(
            tau=policy.tau, branching=policy.branching, think_gain=policy.think_gain, sigma=policy.forecast_sigma
        )

    # -- node verdicts ----------------------------------------------------------------------------------------
    @property
    def cost_weight(self) -> float:
        return self.policy.cost_weight if self.strategy.cost_control else 0.0

    def metrics(self, graph: ThoughtGraph, node_id_: str) -> PathMetrics:
        return path_metrics(graph, node_id_, self.strategy.aggregate)

    def verdict(self, graph: ThoughtGraph, node_id_: str) -> tuple[NodeStatus, str | None]:
        """Once a node is scored: does it stand (``done``) or is its path unsafe (``pruned``, with the reason)?"""
        node = graph[node_id_]
        if node.kind is NodeKind.ROOT or not self.strategy.gate:
            return NodeStatus.DONE, None
        safety = path_safety(graph, node_id_, self.strategy.aggregate)
        if safety >= self.policy.tau:
            return NodeStatus.DONE, None
        steps = scored_steps(graph.lineage(node_id_))
        weakest = min(steps, key=lambda n: n.safety if n.safety is not None else 1.0)
        how = "weakest link" if self.strategy.aggregate_name == "min" else "mean"
        return NodeStatus.PRUNED, (
            f"path safety {safety:.3f} < tau {self.policy.tau} ({how}); "
            f"weakest step {weakest.id} ({weakest.kind}) s={weakest.safety:.3f}"
        )

    # -- cost estimates ---------------------------------------------------------------------------------------
    def estimate_tokens(self, graph: ThoughtGraph, parents: tuple[str, ...], max_tokens: int) -> int:
        """Prompt estimate (request + reasoning so far + overhead + images) + max completion + evaluation."""
        return self._prompt_tokens(graph, parents) + max_tokens + self.policy.eval_tokens

    def _prompt_tokens(self, graph: ThoughtGraph, parents: tuple[str, ...]) -> int:
        """The prompt part of ``estimate_tokens``: every step of the parents' lineages, shared ancestors once."""
        if len(parents) == 1:
            steps = graph.lineage(parents[0])
        else:
            steps = [graph[i] for i in set().union(*(graph.lineage_ids(p) for p in parents))]
        root = NodeKind.ROOT  # see _SOURCE_KINDS
        chars = self.request_chars + sum(len(n.text) + 8 for n in steps if n.kind is not root)
        return chars // CHARS_PER_TOKEN + PROMPT_OVERHEAD_TOKENS + self.image_count * self.policy.image_tokens

    def _max_tokens(self, kind: NodeKind) -> int:
        """The completion cap of a node of ``kind``."""
        if kind is NodeKind.THOUGHT:
            return self.policy.thought_tokens
        if kind is NodeKind.ANSWER:
            return self.policy.answer_tokens
        if kind is NodeKind.REFUSAL:
            return self.policy.refusal_tokens
        raise KeyError(kind)

    # -- planning helpers ---------------------------------------------------------------------------------------
    def _plan(
        self, graph: ThoughtGraph, kind: NodeKind, parents: tuple[str, ...], action: str, count: int
    ) -> list[PlannedNode]:
        max_tokens = self._max_tokens(kind)
        depth = max(graph[p].depth for p in parents) + 1
        est = self.estimate_tokens(graph, parents, max_tokens)
        return [
            PlannedNode(
                id=node_id(graph.job_id, kind, parents, i),
                kind=kind,
                parents=parents,
                depth=depth,
                ordinal=i,
                action=action,
                max_tokens=max_tokens,
                est_tokens=est,
            )
            for i in range(count)
        ]

    def _plan_refusal(self, graph: ThoughtGraph, reason: str, *, template: bool) -> PlannedNode:
        root = graph.root_id
        assert root is not None  # noqa: S101 -- type narrowing of an invariant, not an input check
        if template or self.policy.refusal_mode == "template":
            return PlannedNode(
                id=node_id(graph.job_id, NodeKind.REFUSAL, (root,), TEMPLATE_ORDINAL),
                kind=NodeKind.REFUSAL,
                parents=(root,),
                depth=1,
                ordinal=TEMPLATE_ORDINAL,
                action="refuse",
                max_tokens=0,
                est_tokens=0,
                prefilled_text=REFUSAL_TEMPLATE,
                reason=reason,
            )
        return replace(self._plan(graph, NodeKind.REFUSAL, (root,), "refuse", 1)[0], reason=reason)

    def _shape(self, action: Action) -> tuple[NodeKind, str, int]:
        """What an action creates: the kind of its nodes, its name and how many nodes."""
        if action.kind is ActionKind.THINK:
            return NodeKind.THOUGHT, "think", self.policy.branching
        if action.kind is ActionKind.MERGE:
            return NodeKind.THOUGHT, "merge", 1
        return NodeKind.ANSWER, "answer", 1

    def _action_nodes(self, graph: ThoughtGraph, action: Action) -> list[PlannedNode]:
        kind, name, count = self._shape(action)
        return self._plan(graph, kind, action.sources, name, count)

    # -- the step ---------------------------------------------------------------------------------------------
    def step(self, graph: ThoughtGraph, ledger: LedgerView) -> Step:
        root = graph.root
        if root.status.in_flight:
            return Step(note="waiting for the scan")
        taken = _Taken.of(graph)
        refusal_step = self._refusal_phase(graph, taken)
        if refusal_step is not None:
            return refusal_step
        s0 = root.safety if root.safety is not None else 0.0
        if self.strategy.use_scan and root.status is NodeStatus.DONE and s0 < self.policy.tau_hard:
            return self._refuse(graph, f"scan: request safety {s0:.3f} < tau_hard {self.policy.tau_hard}")
        if root.status is NodeStatus.FAILED:
            return self._refuse(graph, "scan failed: refusing by default")

        in_flight = graph.in_flight()
        slots = self.policy.max_in_flight - len(in_flight)
        budget_left = ledger.remaining - self._reserve_still_needed(taken)
        considered: Sequence[ValuedAction] = ()
        if self.strategy.mode is Mode.NPV:
            planned, considered, stop_note = self._npv_actions(graph, taken, ledger, budget_left, slots, s0)
        else:
            planned, stop_note = self._baseline_actions(graph, taken, budget_left, slots)
        if planned:
            return Step(new=tuple(planned), considered=tuple(considered))
        if in_flight:
            return Step(considered=tuple(considered), note="waiting for nodes in flight")
        return self._finish(graph, stop_note, considered)

    def _reserve_still_needed(self, taken: _Taken) -> int:
        """The refusal reserve stays untouchable until a refusal exists."""
        return 0 if taken.refusals else self.policy.refusal_reserve

    def _refusal_phase(self, graph: ThoughtGraph, taken: _Taken) -> Step | None:
        """Once a refusal has been planned, the job is ending: wait for it, replace a bad one, or conclude."""
        if not taken.refusals:
            return None
        latest = taken.refusals[-1]
        if latest.status.in_flight:
            return Step(note="waiting for the refusal")
        if latest.status is NodeStatus.DONE:
            m = self.metrics(graph, latest.id)
            return Step(
                outcome=Outcome(
                    decision="refused",
                    node_id=latest.id,
                    path=m.path,
                    safety=m.safety,
                    utility=m.utility,
                    cost=graph.tokens_spent(),
                    reason=latest.reason or "no safe answer",
                    pareto=tuple(self._front(graph)),
                )
            )
        # a model-written refusal failed or was itself unsafe: the template stands in
        template = self._plan_refusal(graph, latest.reason or "no safe answer", template=True)
        if template.id in graph:
            raise RuntimeError("the template refusal cannot fail")
        return Step(new=(template,), note="model refusal unusable; template refusal")

    def _refuse(self, graph: ThoughtGraph, reason: str, considered: tuple[ValuedAction, ...] = ()) -> Step:
        return Step(new=(self._plan_refusal(graph, reason, template=False),), considered=considered, note=reason)

    # -- NPV mode ---------------------------------------------------------------------------------------------
    def _source_nodes(self, graph: ThoughtGraph) -> list[Node]:
        done = NodeStatus.DONE  # see _SOURCE_KINDS
        return [n for n in graph if n.kind in _SOURCE_KINDS and n.status is done]

    def _open_actions(self, graph: ThoughtGraph, taken: _Taken) -> list[Action]:
        actions: list[Action] = []
        depth_cap = self.policy.max_depth
        sources = self._source_nodes(graph)
        for v in sources:
            if v.id not in taken.answer and v.depth + 1 <= depth_cap:
                actions.append(Action(ActionKind.ANSWER, (v.id,)))
            if v.id not in taken.think and v.depth + 1 <= depth_cap - 1:
                actions.append(Action(ActionKind.THINK, (v.id,)))
        if self.allow_merge:
            thoughts = [v for v in sources if v.kind is NodeKind.THOUGHT and v.depth + 1 <= depth_cap - 1]
            best_two = sorted(thoughts, key=lambda n: n.utility or 0.0, reverse=True)[:2]
            if len(best_two) == 2 and best_two[0].depth == best_two[1].depth:
                pair = tuple(sorted(n.id for n in best_two))
                if pair not in taken.merge and not set(graph[pair[0]].parents) & {pair[1]}:
                    actions.append(Action(ActionKind.MERGE, pair))
        return actions

    def _best_utility(self, graph: ThoughtGraph) -> float:
        best = self._select(graph)
        return best.utility if best is not None else 0.0

    def _source_facts(self, graph: ThoughtGraph, sources: tuple[str, ...], memo: _Memo) -> tuple[float, int]:
        """S(path to the sources) (the weakest of them) and the prompt estimate from them.

        Remembered for one step only: node scores change between steps (the runtime writes them into the graph)
        but not during one, and a node's answer and think actions both ask.
        """
        facts = memo.get(sources)
        if facts is None:
            safety = min(path_safety(graph, s, self.strategy.aggregate) for s in sources)
            facts = memo[sources] = (safety, self._prompt_tokens(graph, sources))
        return facts

    def _answer_after_thought(self, prompt: int) -> int:
        """The estimate of an answer written after one more thought below sources whose prompt is ``prompt``."""
        p = self.policy
        return prompt + p.thought_tokens + p.answer_tokens + p.eval_tokens

    def _room_held_for_thoughts(self, graph: ThoughtGraph) -> int:
        """Room kept for the answer after the thoughts still generating: a think is worth only that answer."""
        thought = NodeKind.THOUGHT  # see _SOURCE_KINDS
        return max(
            (
                self._answer_after_thought(self._prompt_tokens(graph, n.parents))
                for n in graph.in_flight()
                if n.kind is thought
            ),
            default=0,
        )

    def _value(
        self, graph: ThoughtGraph, action: Action, h: int, s0: float, best_u: float, memo: _Memo
    ) -> ValuedAction:
        """Γ(a | v) at horizon ``h``. The costs come from the prompt estimate alone: ``PlannedNode``s (and their
        hashed ids) are built only for the actions taken."""
        p = self.policy
        sources = [graph[s] for s in action.sources]
        source_safety, prompt = self._source_facts(graph, action.sources, memo)
        is_root = sources[0].kind is NodeKind.ROOT
        forecast_safety = (s0 if self.strategy.use_scan else 1.0) if is_root else source_safety
        promise = p.prior_utility if is_root else max((s.utility or 0.0) for s in sources)
        depth = max(s.depth for s in sources)
        kind, _, count = self._shape(action)
        step_cost = prompt + self._max_tokens(kind) + p.eval_tokens  # estimate_tokens(...) of each new node
        answer_cost = self._answer_after_thought(prompt)
        ctx = ActionContext(
            action=action,
            source_safety=forecast_safety,
            source_promise=promise,
            depth=depth,
            best_utility=best_u,
            step_cost=step_cost,
            answer_cost=answer_cost,
            think_depth_left=p.max_depth - 1 - (depth + 1),
        )
        forecast = self.forecaster.forecast(ctx, h)
        value = gated_value(forecast, source_safety, p.tau, p.discount, self.cost_weight, gate=self.strategy.gate)
        return ValuedAction(action, value, h, step_cost * count, round(committed_tokens(ctx, count)))

    def _npv_actions(
        self, graph: ThoughtGraph, taken: _Taken, ledger: LedgerView, budget_left: int, slots: int, s0: float
    ) -> tuple[list[PlannedNode], list[ValuedAction], str]:
        if slots <= 0:
            return [], [], "in-flight limit"
        root_id = graph.root.id
        if self.strategy.use_scan and s0 > self.policy.tau_easy:
            direct = self._action_nodes(graph, Action(ActionKind.ANSWER, (root_id,)))
            if root_id not in taken.answer and direct[0].est_tokens <= budget_left:
                return direct, [], ""
            if direct[0].id in graph and graph[direct[0].id].status.in_flight:
                return [], [], "waiting for the direct answer"
            if self._select(graph) is not None:
                return [], [], f"easy request (scan {s0:.3f} > tau_easy {self.policy.tau_easy}): direct answer is safe"
            # the direct answer failed or was unsafe: fall through to the full search
        best_u = self._best_utility(graph)
        h = horizon(self.policy.lookahead, ledger.unspent, ledger.total, adaptive=self.strategy.adaptive_horizon)
        memo: _Memo = {}
        valued = [self._value(graph, a, h, s0, best_u, memo) for a in self._open_actions(graph, taken)]
        valued.sort(key=lambda va: va.value, reverse=True)
        if not valued:
            return [], [], f"search space exhausted (max depth {self.policy.max_depth})"
        floor = 0.0 if self.strategy.cost_control else NEG_INF
        planned: list[PlannedNode] = []
        spend = 0
        held = self._room_held_for_thoughts(graph)  # for the answer after the thinks taken (one serves them all)
        stop_note = ""
        for va in valued:
            if va.value <= floor:
                stop_note = stop_note or f"economic stop: best remaining action value {va.value:.4f} <= 0"
                break
            follow_up = va.committed_tokens - va.est_tokens
            if spend + va.est_tokens + max(held, follow_up) > budget_left:
                stop_note = stop_note or (
                    f"budget: {va.action.kind} needs ~{va.committed_tokens} tokens"
                    f"{' with the answer after it' if follow_up else ''}, {budget_left - spend - held} left"
                )
                continue
            if slots <= 0:
                break
            nodes = self._action_nodes(graph, va.action)
            planned += nodes
            spend += va.est_tokens
            held = max(held, follow_up)
            slots -= len(nodes)
        return planned, valued, stop_note

    # -- baselines --------------------------------------------------------------------------------------------
    def _baseline_actions(
        self, graph: ThoughtGraph, taken: _Taken, budget_left: int, slots: int
    ) -> tuple[list[PlannedNode], str]:
        root_id = graph.root.id
        wanted: list[Action] = []
        count = 1
        if self.strategy.mode in (Mode.DIRECT, Mode.BEST_OF_N):
            if root_id not in taken.answer:
                wanted.append(Action(ActionKind.ANSWER, (root_id,)))
            count = self.policy.branching if self.strategy.mode is Mode.BEST_OF_N else 1
        else:  # breadth-first tree of thoughts: think to depth D-1, answer at the deepest thoughts
            leaf_depth = self.policy.max_depth - 1
            for v in self._source_nodes(graph):
                if v.depth < leaf_depth and v.id not in taken.think:
                    wanted.append(Action(ActionKind.THINK, (v.id,)))
                elif v.depth == leaf_depth and v.id not in taken.answer:
                    wanted.append(Action(ActionKind.ANSWER, (v.id,)))
        planned: list[PlannedNode] = []
        spend = 0
        note = "baseline complete"
        for action in wanted:
            if slots <= 0:
                break
            if action.kind is ActionKind.ANSWER:
                nodes = self._plan(graph, NodeKind.ANSWER, action.sources, "answer", count)
            else:
                nodes = self._action_nodes(graph, action)
            cost = sum(n.est_tokens for n in nodes)
            if spend + cost > budget_left:
                note = "budget exhausted"
                continue
            planned += nodes
            spend += cost
            slots -= len(nodes)
        return planned, note

    # -- selection --------------------------------------------------------------------------------------------
    def _complete_paths(self, graph: ThoughtGraph) -> list[PathMetrics]:
        answer, done = NodeKind.ANSWER, NodeStatus.DONE  # see _SOURCE_KINDS
        return [self.metrics(graph, n.id) for n in graph if n.kind is answer and n.status is done]

    def _front(self, graph: ThoughtGraph) -> list[PathMetrics]:
        return pareto_front(self._complete_paths(graph))

    def _select(self, graph: ThoughtGraph) -> PathMetrics | None:
        return self._best_of(self._front(graph))

    def _best_of(self, front: list[PathMetrics]) -> PathMetrics | None:
        """Among Pareto paths with S ≥ τ, the highest U − λ·C/1000; None if there is none."""
        eligible = [p for p in front if not self.strategy.gate or p.safety >= self.policy.tau]
        if not eligible:
            return None
        return max(eligible, key=lambda p: (p.net_value(self.cost_weight), p.safety, -p.cost))

    def _finish(self, graph: ThoughtGraph, stop_note: str, considered: Sequence[ValuedAction]) -> Step:
        front = self._front(graph)
        best = self._best_of(front)
        if best is None:
            reason = "no safe answer" + (f" ({stop_note})" if stop_note else "")
            return self._refuse(graph, reason, tuple(considered))
        return Step(
            outcome=Outcome(
                decision="answered",
                node_id=best.node_id,
                path=best.path,
                safety=best.safety,
                utility=best.utility,
                cost=graph.tokens_spent(),
                reason=stop_note or "search complete",
                pareto=tuple(front),
            ),
            considered=tuple(considered),
        )
