from ecoalign.runtime.visual import graph_mermaid


def report(path):
    def node(id_, kind, parents, status, safety):
        return {
            "id": id_,
            "kind": kind,
            "parents": parents,
            "status": status,
            "safety": safety,
            "utility": 0.5,
            "tokens": 10,
            "text": f'{kind} "text"',
        }

    return {
        "path": path,
        "graph": {
            "nodes": [
                node("r", "root", [], "done", 0.9),
                node("a", "thought", ["r"], "done", 0.9),
                node("b", "thought", ["r"], "pruned", 0.1),
                node("m", "thought", ["a", "b"], "pruned", 0.9),
                node("x", "answer", ["a"], "done", 0.95),
            ]
        },
    }


def test_mermaid_shows_statuses_merges_and_the_chosen_path():
    text = graph_mermaid(report(["r", "a", "x"]))
    lines = [line.strip() for line in text.splitlines()]
    assert lines[0] == "flowchart TD"
    assert sum(":::pruned" in line for line in lines) == 2
    assert sum(":::done" in line for line in lines) == 3
    assert "n0 ==> n1" in lines
    assert "n1 ==> n4" in lines
    assert "n0 --> n2" in lines
    assert "n1 --> n3" in lines
    assert "n2 --> n3" in lines
    assert '"text"' not in text  # quotes in node text cannot break the diagram
