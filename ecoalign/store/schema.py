"""The whole schema on one ``MetaData``: every model module imported, for what must see every table at once
(Alembic's ``env.py``, the test that the models match the migrations)."""

from __future__ import annotations

from sqlalchemy import MetaData

from ecoalign.store import audit_models, batch_models, models
from ecoalign.store.base import Base

MODEL_MODULES = (models, batch_models, audit_models)
metadata: MetaData = Base.metadata
