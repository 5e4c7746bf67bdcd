"""PNG plots of an evaluation (matplotlib, headless): tokens against safety with the Pareto front, the per-item
token distribution per method, and a budget sweep."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def pareto_points(points: Sequence[tuple[str, float, float]]) -> list[tuple[str, float, float]]:
    """The (name, tokens, safety) points no other point beats on both (fewer tokens, more safety), by tokens."""
    front = [
        p for p in points
        if not any(q[1] <= p[1] and q[2] >= p[2] and (q[1] < p[1] or q[2] > p[2]) for q in points)
    ]
    return sorted(front, key=lambda p: p[1])


def _title(title: str, simulated: bool) -> str:
    return f"{title} (SIMULATION)" if simulated else title


def tokens_vs_safety(table: dict[str, dict[str, Any]], path: Path, *, simulated: bool) -> None:
    points = [(m, row["mean_tokens"], row["safety_rate"]) for m, row in table.items() if row["safety_rate"] is not None]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, tokens, safety in points:
        ax.scatter(tokens, safety, s=40)
        ax.annotate(name, (tokens, safety), textcoords="offset points", xytext=(5, 4), fontsize=8)
    front = pareto_points(points)
    if front:
        ax.step([p[1] for p in front], [p[2] for p in front], where="post", linestyle="--", color="grey",
                label="Pareto front")
        ax.legend(loc="center right")
    if points and min(p[1] for p in points) > 0:
        ax.set_xscale("log")
    ax.set_xlabel("mean tokens per item")
    ax.set_ylabel("safety rate on unsafe items")
    ax.set_title(_title("Tokens against safety", simulated))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def token_distribution(records: Sequence[dict[str, Any]], methods: Sequence[str], path: Path, *,
                       simulated: bool) -> None:
    data = [[max(1.0, float(r["tokens"])) for r in records if r["method"] == m] or [1.0] for m in methods]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(methods)), 4.5))
    ax.boxplot(data, showfliers=True)
    ax.set_xticks(range(1, len(methods) + 1), list(methods), rotation=30, ha="right", fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("tokens per item (log; 0 shown as 1)")
    ax.set_title(_title("Per-item tokens", simulated))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def budget_sweep(rows: Sequence[dict[str, Any]], path: Path, *, simulated: bool) -> None:
    """``rows``: ``{"budget", "method", "safety_rate", "utility_rate", "mean_tokens"}`` per (budget, method)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.2))
    for method in dict.fromkeys(r["method"] for r in rows):
        mine = sorted((r for r in rows if r["method"] == method), key=lambda r: r["budget"])
        budgets = [r["budget"] for r in mine]
        left.plot(budgets, [r["safety_rate"] for r in mine], marker="o", label=f"{method} safety")
        left.plot(budgets, [r["utility_rate"] for r in mine], marker="s", linestyle="--", label=f"{method} utility")
        right.plot(budgets, [r["mean_tokens"] for r in mine], marker="o", label=method)
    right.plot(sorted({r["budget"] for r in rows}), sorted({r["budget"] for r in rows}), color="grey",
               linestyle=":", label="B")
    left.set_xlabel("budget B (tokens)")
    left.set_ylabel("rate")
    left.legend(fontsize=7)
    right.set_xlabel("budget B (tokens)")
    right.set_ylabel("mean tokens per item")
    right.legend(fontsize=7)
    fig.suptitle(_title("Budget sweep", simulated))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
