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
DUPLICATE = "duplicate"  # the decision of an earlier item with the same (or a near-identical) content, reused

# Items still uncertain when their budget ended: the scan decided them alone, and a human should look
# (``ecoalign.moderation.service.open_reviews``).
BUDGET_ENDED = frozenset({SCAN_RUN_BUDGET, SCAN_ITEM_BUDGET, VALUE_BUDGET})
# Decisions a duplicate must not inherit: they say more about that moment (a run budget spent, a judge down)
# than about the content, so the next copy decides again.
NOT_REUSABLE = frozenset({SCAN_RUN_BUDGET, SCAN_JUDGE_FAILED})
