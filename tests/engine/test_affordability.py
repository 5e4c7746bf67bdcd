"""A think is affordable only with the answer after it: its value lies in that answer (METHOD.md's NPV)."""

from __future__ import annotations

from ecoalign.engine.graph import NodeKind
from ecoalign.engine.policy import Policy
from ecoalign.engine.valuation import Action, ActionContext, ActionKind, committed_tokens
from ecoalign.testing.engine_harness import fixed_tokens, run_search


def _ctx(kind: ActionKind) -> ActionContext:
    return ActionContext(
        action=Action(kind, ("a", "b") if kind is ActionKind.MERGE else ("a",)),
        source_safety=0.8,
        source_promise=0.5,
        depth=1,
        best_utility=0.0,
        step_cost=300,
        answer_cost=450,
        think_depth_left=1,
    )


def test_a_think_or_merge_commits_its_nodes_and_the_answer_after_it():
    assert committed_tokens(_ctx(ActionKind.THINK), 3) == 3 * 300 + 450
    assert committed_tokens(_ctx(ActionKind.MERGE), 1) == 300 + 450


def test_an_answer_or_refusal_commits_only_its_own_nodes():
    assert committed_tokens(_ctx(ActionKind.ANSWER), 1) == 300
    assert committed_tokens(_ctx(ActionKind.REFUSE), 0) == 0


# "a request": prompt 163 tokens; a think is 3 x (163 + 96) = 777 tokens, the answer after it ~515, a direct
# answer 419. With B = 1000 the think fits alone but not with its answer.
def test_a_think_that_leaves_no_room_for_its_answer_is_not_taken_and_the_request_is_answered():
    run = run_search(Policy(budget=1000), fixed_tokens(250), lambda n, g: (0.9, 0.6), scan_safety=0.7)
    assert not [n for n in run.graph if n.kind is NodeKind.THOUGHT]
    assert run.outcome.decision == "answered"
    assert run.graph[run.outcome.node_id].depth == 1
    first_think = next(va for va in run.steps[0].considered if va.action.kind is ActionKind.THINK)
    assert first_think.est_tokens <= 1000 < first_think.committed_tokens


def test_a_think_with_room_for_its_answer_is_still_taken_and_answered_after():
    run = run_search(Policy(budget=1400), fixed_tokens(250), lambda n, g: (0.9, 0.6), scan_safety=0.7)
    thoughts = [n for n in run.graph if n.kind is NodeKind.THOUGHT]
    assert len(thoughts) == 3
    assert run.outcome.decision == "answered"
    assert run.graph[run.outcome.node_id].depth == 2
    assert run.ledger.spent <= 1400


def test_while_thoughts_generate_no_other_action_takes_the_room_of_the_answer_after_them():
    # B = 1300: after the think (777 reserved) a root answer (419) would fit, but then no answer after the
    # thoughts would: the room for that answer is held, so the answer comes from a thought.
    run = run_search(Policy(budget=1300), fixed_tokens(250), lambda n, g: (0.9, 0.6), scan_safety=0.7)
    answers = [n for n in run.graph if n.kind is NodeKind.ANSWER]
    assert [a.depth for a in answers] == [2]
    assert run.outcome.node_id == answers[0].id
