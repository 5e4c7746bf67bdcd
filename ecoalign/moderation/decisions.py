"""The decision paths a result names in ``ecoalign.decision``: why the item was settled the way it was."""

from __future__ import annotations

SCAN_SAFE = "scan:confident-safe"
SCAN_UNSAFE = "scan:confident-unsafe"
SCAN_NO_JUDGE = "scan:uncertain-no-judge"
SCAN_RUN_BUDGET = "scan:uncertain-run-budget-exhausted"
SCAN_ITEM_BUDGET = "scan:uncertain-item-budget-too-small"
SCAN_JUDGE_FAILED = "scan:uncertain-judge-failed"
JUDGE = "judge"
VALUE_NOT_WORTH = "scan:evidence-not-worth-its-cost"
VALUE_BUDGET = "scan:uncertain-budget-too-small"
