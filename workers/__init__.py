"""Celery app and tasks: thin shells over ecoalign.runtime steps."""
