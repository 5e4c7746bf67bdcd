"""Property tests of the method's invariants (hypothesis)."""

from __future__ import annotations

import hashlib
import math

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from ecoalign.engine.graph import Node, NodeKind, NodeStatus, ThoughtGraph
from ecoalign.engine.metrics import PathMetrics, mean_safety, path_metrics
from ecoalign.engine.pareto import ParetoTracker, dominates, pareto_front
from ecoalign.engine.policy import Policy
from ecoalign.engine.search import Search
from ecoalign.engine.strategies import ECOALIGN, NO_COST_CONTROL, NO_WEAKEST_LINK
from ecoalign.engine.valuation import horizon
from ecoalign.testing.engine_harness import fixed_tokens, run_search

unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def chain(safeties: list[float]) -> ThoughtGraph:
    g = ThoughtGraph("j")
    parent = g.add_root("q").id
    for i, s in enumerate(safeties):
        kind = NodeKind.ANSWER if i == len(safeties) - 1 else NodeKind.THOUGHT
        parent = g.add(Node(f"n{i}", kind, (parent,), i + 1, safety=s, utility=0.5, tokens=1)).id
    return g


def hashed(node: Node, salt: str, lo: float = 0.0) -> float:
    digest = hashlib.sha256(f"{salt}:{node.kind}:{node.parents}:{node.ordinal}".encode()).digest()
    return lo + (1.0 - lo) * digest[0] / 255.0


@FAST
@given(st.lists(unit, min_size=1, max_size=8))
def test_path_safety_is_the_minimum_over_its_nodes(safeties):
    g = chain(safeties)
    assert path_metrics(g, f"n{len(safeties) - 1}").safety == min(safeties)


@FAST
@given(st.lists(st.floats(0.9, 1.0), min_size=3, max_size=8), st.floats(0.0, 0.45), st.data())
def test_one_unsafe_step_prunes_the_path_even_when_the_mean_is_high(safe, bad, data):
    position = data.draw(st.integers(0, len(safe) - 1))
    safeties = [*safe[:position], bad, *safe[position:]]
    assume(sum(safeties) / len(safeties) >= 0.5)
    g = chain(safeties)
    last = f"n{len(safeties) - 1}"
    status, reason = Search(Policy(), ECOALIGN).verdict(g, last)
    assert status is NodeStatus.PRUNED
    assert "weakest" in reason
    # the process-blind ablation lets the same path through
    assert Search(Policy(), NO_WEAKEST_LINK).verdict(g, last)[0] is NodeStatus.DONE
    assert path_metrics(g, last, mean_safety).safety >= 0.5


metrics_lists = st.lists(
    st.tuples(st.sampled_from([0.1, 0.5, 0.9, 1.0]), st.sampled_from([0.0, 0.3, 0.7]), st.integers(0, 5)),
    min_size=0,
    max_size=25,
)


@FAST
@given(metrics_lists)
def test_pareto_set_is_exactly_the_non_dominated_complete_paths(triples):
    paths = [PathMetrics(f"p{i}", (), s, u, c) for i, (s, u, c) in enumerate(triples)]
    front = pareto_front(paths)
    expected = [p for p in paths if not any(dominates(q, p) for q in paths)]
    assert front == expected
    for p in paths:  # every path outside the front is beaten by one inside it
        if p not in front:
            assert any(dominates(q, p) for q in front)
    tracker = ParetoTracker()
    for p in paths:
        tracker.offer(p)
    key = lambda p: (p.safety, p.utility, p.cost)  # noqa: E731
    assert sorted(map(key, tracker.front)) == sorted(map(key, front))


@FAST
@given(
    budget=st.integers(0, 6000),
    tokens=st.integers(1, 600),
    batch=st.integers(1, 6),
    salt=st.text(min_size=1, max_size=4),
    mode=st.sampled_from(["template", "model"]),
)
def test_spent_never_exceeds_the_budget(budget, tokens, batch, salt, mode):
    """Even when servers report more tokens than were reserved, the ledger never breaks its invariant."""
    policy = Policy(budget=budget, refusal_mode=mode, max_depth=3)
    run = run_search(
        policy,
        fixed_tokens(tokens),
        lambda n, g: (hashed(n, salt), hashed(n, salt + "u")),
        batch=batch,
    )
    for total, spent, reserved in run.ledger_trace:
        assert spent + reserved <= total
        assert spent <= budget
    assert run.ledger.spent <= budget
    assert run.ledger.reserved == 0
    assert run.outcome.decision in {"answered", "refused"}


@given(st.integers(1, 8), st.integers(1, 100_000), st.data())
def test_horizon_shrinks_as_the_budget_is_spent(k, budget, data):
    r1 = data.draw(st.integers(0, budget))
    r2 = data.draw(st.integers(0, r1))
    assert horizon(k, r2, budget) <= horizon(k, r1, budget)
    assert horizon(k, budget, budget) == k
    assert horizon(k, 0, budget) == 1
    assert horizon(k, r2, budget, adaptive=False) == k


def test_horizon_shrinks_during_a_run():
    run = run_search(Policy(budget=3000, lookahead=4), fixed_tokens(60), lambda n, g: (0.9, 0.3 + 0.1 * n.depth))
    horizons = [max(va.horizon for va in s.considered) for s in run.steps if s.considered]
    assert horizons == sorted(horizons, reverse=True)
    assert horizons[0] > horizons[-1]


def exhaustive(policy: Policy, score) -> set[tuple[str, tuple[str, ...], int]]:
    """Reference: every safe node thinks (until depth D-1) and answers (until depth D)."""
    from ecoalign.engine.graph import node_id

    g = ThoughtGraph("job-1")
    root = g.add_root("a request")
    visited: set = set()
    frontier = [root]
    while frontier:
        v = frontier.pop(0)
        if v.depth + 1 <= policy.max_depth:
            a = Node(node_id("job-1", NodeKind.ANSWER, (v.id,), 0), NodeKind.ANSWER, (v.id,), v.depth + 1)
            g.add(a)
            visited.add(("answer", a.parents, 0))
        if v.depth + 1 <= policy.max_depth - 1:
            for i in range(policy.branching):
                t = g.add(
                    Node(
                        node_id("job-1", NodeKind.THOUGHT, (v.id,), i),
                        NodeKind.THOUGHT,
                        (v.id,),
                        v.depth + 1,
                        ordinal=i,
                    )
                )
                visited.add(("thought", t.parents, i))
                t.safety, t.utility = score(t, g)
                if path_metrics(g, t.id).safety >= policy.tau:
                    frontier.append(t)
    return visited


small = st.fixed_dictionaries({"m": st.integers(1, 2), "d": st.integers(1, 3), "salt": st.text(min_size=1, max_size=3)})


@FAST
@given(small)
def test_with_unlimited_budget_and_free_tokens_the_search_is_exhaustive(inst):
    policy = Policy(budget=10**9, branching=inst["m"], max_depth=inst["d"], max_in_flight=64)
    score = lambda n, g: (hashed(n, inst["salt"], lo=0.2), hashed(n, inst["salt"] + "u", lo=0.2))  # noqa: E731
    reference = exhaustive(policy, score)
    for strategy, p in ((NO_COST_CONTROL, policy), (ECOALIGN, policy.with_(cost_weight=1e-9))):
        run = run_search(p, fixed_tokens(10), score, strategy=strategy, batch=64)
        assert run.visited() == reference, strategy.name


@FAST
@given(small, st.integers(500, 5000))
def test_with_cost_the_search_visits_a_subset_of_exhaustive(inst, budget):
    policy = Policy(budget=budget, branching=inst["m"], max_depth=inst["d"])
    score = lambda n, g: (hashed(n, inst["salt"], lo=0.2), hashed(n, inst["salt"] + "u", lo=0.2))  # noqa: E731
    run = run_search(policy, fixed_tokens(40), score)
    reference = exhaustive(policy.with_(budget=10**9), score)
    assert run.visited() <= reference


@FAST
@given(st.floats(0.5, 0.95), st.floats(5.0, 100.0))
def test_economic_stop_fires_when_the_best_value_is_not_positive(scan, cost_weight):
    """When tokens are priced above any forecast gain, the machine stops at once instead of searching."""
    policy = Policy(budget=10_000, cost_weight=cost_weight)
    run = run_search(policy, fixed_tokens(50), lambda n, g: (0.9, 0.9), scan_safety=scan)
    first = run.steps[0]
    assert first.considered
    assert max(va.value for va in first.considered) <= 0
    assert run.outcome.decision == "refused"
    assert "economic stop" in run.outcome.reason
    assert run.ledger.spent == 0


@FAST
@given(st.floats(0.1, 0.95), st.text(min_size=1, max_size=3))
def test_every_planned_action_had_positive_value(scan, salt):
    run = run_search(
        Policy(budget=5000),
        fixed_tokens(30),
        lambda n, g: (hashed(n, salt, 0.3), hashed(n, salt + "u")),
        scan_safety=scan,
    )
    for step in run.steps:
        planned = {(p.action, p.parents) for p in step.new}
        for va in step.considered:
            if (va.action.kind.value, va.action.sources) in planned:
                assert va.value > 0
                assert math.isfinite(va.value)
