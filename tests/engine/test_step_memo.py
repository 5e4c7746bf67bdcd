"""The step's shortcuts (one prompt estimate per action, path safety without ``PathMetrics``, per-step memos)
give exactly what the long way gives, and nothing is remembered across steps: scores change between them."""

from __future__ import annotations

from collections import defaultdict

import pytest

from ecoalign.engine.graph import Node, NodeKind, NodeStatus, ThoughtGraph
from ecoalign.engine.metrics import mean_safety, path_metrics, path_safety, weakest_link
from ecoalign.engine.policy import Policy
from ecoalign.engine.search import LedgerView, Search
from ecoalign.testing.engine_harness import run_search
from tests.engine.test_graph import build_diamond


@pytest.mark.parametrize("aggregate", [weakest_link, mean_safety])
def test_path_safety_and_lineage_ids_agree_with_the_full_metrics(aggregate):
    g = build_diamond()
    for n in g:
        assert g.lineage_ids(n.id) == tuple(v.id for v in g.lineage(n.id)) == path_metrics(g, n.id).path
        assert path_safety(g, n.id, aggregate) == path_metrics(g, n.id, aggregate).safety


def test_estimate_counts_a_shared_ancestor_once():
    g = build_diamond()
    a, b, m = (n for n in g if n.kind is NodeKind.THOUGHT)
    a.text, b.text, m.text = "a" * 30, "b" * 60, "m" * 90
    search = Search(Policy(eval_tokens=7), request_chars=12)
    chars = 12 + (30 + 8) + (60 + 8) + (90 + 8)  # a is in m's lineage too: counted once; the root not at all
    assert search.estimate_tokens(g, (a.id, m.id), 100) == chars // 3 + 160 + 100 + 7


def test_a_valued_action_costs_what_its_planned_nodes_reserve():
    policy = Policy(budget=50_000, branching=3, max_depth=4, cost_weight=1e-6, eval_tokens=11)
    run = run_search(
        policy,
        lambda node, graph: (node.kind.value * (3 + node.depth * 7 + node.ordinal), 20),
        lambda n, g: (0.9, 0.3 + 0.1 * n.depth),
        allow_merge=True,
        batch=4,
    )
    checked = 0
    for step in run.steps:
        planned: dict[tuple[str, tuple[str, ...]], int] = defaultdict(int)
        for p in step.new:
            planned[(p.action, p.parents)] += p.est_tokens
        for va in step.considered:
            key = (va.action.kind.value, va.action.sources)
            if key in planned:
                assert planned[key] == va.est_tokens
                checked += 1
    assert checked >= 5
    assert any(len(n.parents) == 2 for n in run.graph)


def _scored_graph(utility: float, safety: float) -> ThoughtGraph:
    g = ThoughtGraph("job-m")
    root = g.add_root("a request")
    root.safety, root.utility, root.status = 0.7, 0.0, NodeStatus.DONE
    for i in range(2):
        g.add(Node(f"t{i}", NodeKind.THOUGHT, (root.id,), 1, NodeStatus.DONE, i, "step", safety, utility, tokens=40))
    return g


def test_scores_written_between_steps_are_seen():
    """The runtime scores nodes in place between steps: a step on the rescored graph must equal one on a fresh
    graph with the same scores (no memo may outlive a call)."""
    search = Search(Policy(budget=6000))
    ledger = LedgerView(total=6000, spent=80)
    g = _scored_graph(utility=0.2, safety=0.9)
    first = search.step(g, ledger)
    for n in g:
        if n.kind is NodeKind.THOUGHT:
            n.utility, n.safety = 0.7, 0.6
    again = search.step(g, ledger)
    assert again == search.step(_scored_graph(utility=0.7, safety=0.6), ledger)
    assert [va.value for va in again.considered] != [va.value for va in first.considered]
