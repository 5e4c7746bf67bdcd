"""ecoalign's Alembic migrations (``env.py``, ``versions/``).

A package only so the scripts ship in the wheel (``ecoalign.store.migrate`` finds them with ``importlib.resources``
when there is no repository checkout); nothing here is meant to be imported. Developers keep using this folder
through ``alembic.ini`` (``script_location = migrations``).
"""

# ``ecoalign.store.migrate`` checks this before using a ``migrations`` package found on ``sys.path``, so another
# project's ``migrations`` package (a generic name) is never run against an ecoalign database.
ECOALIGN_MIGRATIONS = True
