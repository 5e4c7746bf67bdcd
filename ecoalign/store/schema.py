"""The whole schema on one ``MetaData``: every model module imported, for what must see every table at once
(Alembic's ``env.py``, the test that the models match the migrations)."""

from __future__ import annotations

from sqlalchemy import MetaData

from ecoalign.store import (
    audit_models,  # issue 13: audit runs
    batch_models,
    dedup_models,  # issue 14: duplicates decided once
    models,
    policy_models,  # issue 14: tenant policies
    quota_models,  # issue 15: tenant rate limits
    review_models,  # issue 14: the review queue
    webhook_models,  # issue 17: webhooks
)
from ecoalign.store.base import Base

MODEL_MODULES = (
    models, batch_models, policy_models, review_models, dedup_models, webhook_models, quota_models, audit_models
)
metadata: MetaData = Base.metadata
