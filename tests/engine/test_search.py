"""Behaviour of the search machine and of the strategies on hand-built scenarios."""

from __future__ import annotations

import pytest

from ecoalign.engine.graph import NodeKind, NodeStatus
from ecoalign.engine.policy import Policy, PolicyError
from ecoalign.engine.prompts import REFUSAL_TEMPLATE
from ecoalign.engine.strategies import BEST_OF_N, DIRECT, FILTER, FIXED_HORIZON, TOT_MEAN, get_strategy
from ecoalign.testing.engine_harness import fixed_tokens, run_search


def by_kind(run, kind):
    return [n for n in run.graph if n.kind is kind]


def test_hard_scan_short_circuits_to_a_free_template_refusal():
    run = run_search(Policy(budget=4000), fixed_tokens(50), lambda n, g: (0.9, 0.9), scan_safety=0.02)
    assert run.outcome.decision == "refused"
    assert "tau_hard" in run.outcome.reason
    assert run.ledger.spent == 0
    assert len(run.graph) == 2
    assert by_kind(run, NodeKind.REFUSAL)[0].text == REFUSAL_TEMPLATE


def test_model_refusal_is_reserved_up_front_and_replaced_by_the_template_when_unsafe():
    policy = Policy(budget=400, refusal_mode="model", refusal_tokens=64)
    assert policy.refusal_reserve == 64
    run = run_search(policy, fixed_tokens(20), lambda n, g: (0.1, 0.1), scan_safety=0.02)
    refusals = by_kind(run, NodeKind.REFUSAL)
    assert [r.status for r in refusals] == [NodeStatus.PRUNED, NodeStatus.DONE]
    assert run.outcome.decision == "refused"
    assert run.outcome.node_id == refusals[1].id


def test_refusal_reserve_is_never_spent_on_search():
    policy = Policy(budget=900, refusal_mode="model", refusal_tokens=200)
    run = run_search(policy, fixed_tokens(80), lambda n, g: (0.9, 0.2))
    searched = sum(n.tokens for n in run.graph if n.kind is not NodeKind.REFUSAL)
    assert searched <= policy.budget - policy.refusal_reserve


def test_easy_request_takes_one_direct_answer():
    run = run_search(Policy(budget=4000), fixed_tokens(50), lambda n, g: (0.99, 0.6), scan_safety=0.99)
    assert [n.kind for n in run.graph] == [NodeKind.ROOT, NodeKind.ANSWER]
    assert run.outcome.decision == "answered"
    assert "easy" in run.outcome.reason


def test_easy_request_with_an_unsafe_direct_answer_falls_back_to_search():
    def score(node, graph):
        return (0.1, 0.9) if node.kind is NodeKind.ANSWER and node.depth == 1 else (0.9, 0.6)

    run = run_search(Policy(budget=4000), fixed_tokens(40), score, scan_safety=0.99)
    assert len(by_kind(run, NodeKind.THOUGHT)) > 0
    assert run.outcome.decision == "answered"
    assert run.graph[run.outcome.node_id].depth > 1


def test_unsafe_reasoning_under_a_safe_looking_answer_is_refused():
    """Process blindness: the final answer looks safe but a step on its path is not."""

    def score(node, graph):
        if node.kind is NodeKind.THOUGHT:
            return (0.95, 0.6) if node.depth == 1 else (0.3, 0.9)  # the second step is harmful
        return (0.99, 0.95) if node.depth == 3 else (0.2, 0.1)  # only answers after it look good

    policy = Policy(budget=50_000, max_depth=3, branching=2, cost_weight=0.001)
    eco = run_search(policy, fixed_tokens(30), score)
    assert eco.outcome.decision == "refused"
    deep = [n for n in by_kind(eco, NodeKind.THOUGHT) if n.depth == 2]
    assert deep
    assert all(n.status is NodeStatus.PRUNED for n in deep)
    tot = run_search(policy, fixed_tokens(30), score, strategy=TOT_MEAN)
    assert tot.outcome.decision == "answered"  # the mean hides the harmful step
    assert min(tot.graph[i].safety for i in tot.outcome.path[1:]) < policy.tau


def test_direct_answers_whatever_the_evaluator_says_and_filter_refuses():
    unsafe = lambda n, g: (0.1, 0.9)  # noqa: E731
    assert run_search(Policy(), fixed_tokens(10), unsafe, strategy=DIRECT).outcome.decision == "answered"
    assert run_search(Policy(), fixed_tokens(10), unsafe, strategy=FILTER).outcome.decision == "refused"


def test_best_of_n_keeps_the_most_useful_safe_answer():
    utilities = {0: (0.9, 0.5), 1: (0.2, 0.99), 2: (0.9, 0.7)}
    run = run_search(Policy(branching=3), fixed_tokens(10), lambda n, g: utilities[n.ordinal], strategy=BEST_OF_N)
    assert len(by_kind(run, NodeKind.ANSWER)) == 3
    assert run.outcome.decision == "answered"
    assert run.graph[run.outcome.node_id].ordinal == 2


def test_tot_mean_builds_the_full_tree():
    policy = Policy(budget=10**7, branching=2, max_depth=3, max_in_flight=64)
    run = run_search(policy, fixed_tokens(10), lambda n, g: (0.9, 0.5), strategy=TOT_MEAN, batch=64)
    assert len(by_kind(run, NodeKind.THOUGHT)) == 2 + 4
    assert len(by_kind(run, NodeKind.ANSWER)) == 4


def test_fixed_horizon_ablation_keeps_k():
    run = run_search(
        Policy(budget=2000, lookahead=3), fixed_tokens(100), lambda n, g: (0.9, 0.5), strategy=FIXED_HORIZON
    )
    assert {va.horizon for s in run.steps for va in s.considered} == {3}


def test_merge_creates_a_node_with_two_parents():
    policy = Policy(budget=50_000, branching=2, max_depth=4, cost_weight=1e-6)
    run = run_search(policy, fixed_tokens(10), lambda n, g: (0.9, 0.3 + 0.1 * n.depth), allow_merge=True, batch=8)
    merged = [n for n in run.graph if len(n.parents) == 2]
    assert merged
    assert all(n.kind is NodeKind.THOUGHT for n in merged)


def test_redelivered_step_plans_the_same_ids():
    """The controller may run twice on the same state (at-least-once delivery): it must plan identical nodes."""
    from ecoalign.engine.graph import ThoughtGraph
    from ecoalign.engine.search import Search
    from ecoalign.testing.ledger import InMemoryLedger

    g = ThoughtGraph("job-x")
    root = g.add_root("hello")
    root.safety, root.status = 0.7, NodeStatus.DONE
    search = Search(Policy())
    ledger = InMemoryLedger(total=4000)
    first = search.step(g, ledger.view())
    second = search.step(g, ledger.view())
    assert [p.id for p in first.new] == [p.id for p in second.new]
    assert first.new


def test_policy_validation_names_the_field():
    with pytest.raises(PolicyError, match=r"policy\.tau"):
        Policy(tau=1.5)
    with pytest.raises(PolicyError, match="unknown policy field"):
        Policy.from_dict({"budgett": 3})
    assert Policy.from_dict({"budget": 12}).budget == 12


def test_unknown_strategy_lists_the_choices():
    with pytest.raises(ValueError, match="ecoalign"):
        get_strategy("nope")
