"""The thought graph as a picture: a Mermaid flowchart of a job report (renders on GitHub, in docs, in mermaid.live).

Colours carry the method: green nodes stand, red ones were pruned by the weakest link (their reason on hover),
grey ones failed, and the chosen path is drawn with thick edges.
"""

from __future__ import annotations

from typing import Any

STATUS_CLASS = {"done": "done", "pruned": "pruned", "failed": "failed", "pending": "open", "running": "open"}
CLASS_STYLES = {
    "done": "fill:#e7f6e7,stroke:#2e7d32",
    "pruned": "fill:#fdecea,stroke:#c62828,stroke-dasharray: 4 2",
    "failed": "fill:#eeeeee,stroke:#757575",
    "open": "fill:#fff8e1,stroke:#f9a825",
}


def _label(node: dict[str, Any]) -> str:
    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}"

    text = " ".join((node.get("text") or "").split())[:48].replace('"', "'")
    head = f"{node['kind']} s={fmt(node.get('safety'))} u={fmt(node.get('utility'))} tok={node.get('tokens', 0)}"
    return f"{head}<br/>{text}" if text else head


def graph_mermaid(report: dict[str, Any]) -> str:
    """A Mermaid ``flowchart`` of ``report["graph"]``; nodes on ``report["path"]`` are joined by thick edges."""
    nodes = report["graph"]["nodes"]
    short = {n["id"]: f"n{i}" for i, n in enumerate(nodes)}
    chosen = set(report.get("path") or [])  # the chosen node's lineage: every edge inside it is on the path
    lines = ["flowchart TD"]
    for node in nodes:
        lines.append(f'  {short[node["id"]]}["{_label(node)}"]:::{STATUS_CLASS.get(node["status"], "open")}')
    for node in nodes:
        for parent in node["parents"]:
            arrow = "==>" if parent in chosen and node["id"] in chosen else "-->"
            lines.append(f"  {short[parent]} {arrow} {short[node['id']]}")
    lines += [f"  classDef {name} {style}" for name, style in CLASS_STYLES.items()]
    return "\n".join(lines) + "\n"
