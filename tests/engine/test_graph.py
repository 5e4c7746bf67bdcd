import pytest

from ecoalign.engine.graph import GraphError, Node, NodeKind, NodeStatus, ThoughtGraph, node_id
from ecoalign.engine.metrics import mean_safety, path_metrics


def build_diamond() -> ThoughtGraph:
    """root → a, b → m (two parents) → answer."""
    g = ThoughtGraph("j")
    root = g.add_root("q")
    a = g.add(Node(node_id("j", "thought", [root.id], 0), NodeKind.THOUGHT, (root.id,), 1, safety=0.9, tokens=5))
    b = g.add(Node(node_id("j", "thought", [root.id], 1), NodeKind.THOUGHT, (root.id,), 1, safety=0.2, tokens=7))
    m = g.add(Node(node_id("j", "thought", [a.id, b.id], 0), NodeKind.THOUGHT, (a.id, b.id), 2, safety=0.95, tokens=3))
    g.add(Node("ans", NodeKind.ANSWER, (m.id,), 3, safety=0.99, utility=0.8, tokens=11))
    return g


def test_node_ids_are_deterministic_and_order_free():
    assert node_id("j", "thought", ["a", "b"], 0) == node_id("j", "thought", ["b", "a"], 0)
    assert node_id("j", "thought", ["a"], 0) != node_id("j", "thought", ["a"], 1)
    assert node_id("j", "thought", ["a"], 0) != node_id("k", "thought", ["a"], 0)


def test_dag_rules_are_enforced():
    g = ThoughtGraph("j")
    root = g.add_root("q")
    with pytest.raises(GraphError, match="unknown parent"):
        g.add(Node("x", NodeKind.THOUGHT, ("nope",)))
    with pytest.raises(GraphError, match="needs at least one parent"):
        g.add(Node("x", NodeKind.THOUGHT, ()))
    g.add(Node("ans", NodeKind.ANSWER, (root.id,), 1))
    with pytest.raises(GraphError, match="terminal"):
        g.add(Node("y", NodeKind.THOUGHT, ("ans",), 2))
    with pytest.raises(GraphError, match="duplicate"):
        g.add(Node("ans", NodeKind.ANSWER, (root.id,), 1))
    with pytest.raises(GraphError, match="already has a root"):
        g.add(Node("r2", NodeKind.ROOT))


def test_merge_node_lineage_holds_both_parents_and_weakest_link_sees_them():
    g = build_diamond()
    lineage = [n.id for n in g.lineage("ans")]
    assert len(lineage) == 5
    assert lineage[0] == g.root.id
    assert lineage[-1] == "ans"
    m = path_metrics(g, "ans")
    assert m.safety == pytest.approx(0.2)  # the unsafe parent b taints the merged line
    assert m.cost == 5 + 7 + 3 + 11
    assert m.utility == 0.8
    assert path_metrics(g, "ans", mean_safety).safety == pytest.approx((0.9 + 0.2 + 0.95 + 0.99) / 4)


def test_in_flight_and_edges():
    g = build_diamond()
    assert {n.id for n in g.in_flight()} == {n.id for n in g}  # all pending by default
    g["ans"].status = NodeStatus.DONE
    assert "ans" not in {n.id for n in g.in_flight()}
    assert len(g.edges()) == 5


def test_replace_swaps_a_nodes_state_but_not_its_place_or_shape():
    g = build_diamond()
    order = [n.id for n in g]
    b = g[order[2]]
    newer = Node(b.id, NodeKind.THOUGHT, b.parents, 1, status=NodeStatus.DONE, safety=0.8, tokens=9)
    g.replace(newer)
    assert g[b.id] is newer
    assert [n.id for n in g] == order
    assert path_metrics(g, "ans").safety == pytest.approx(0.8)  # the lineage reads the new state
    with pytest.raises(GraphError, match="unknown node"):
        g.replace(Node("nope", NodeKind.THOUGHT, (g.root.id,), 1))
    with pytest.raises(GraphError, match="kind or parents"):
        g.replace(Node(b.id, NodeKind.THOUGHT, (order[1],), 1))
