"""The worker processes: Celery task shells over ecoalign (runtime for jobs, batches for the Batch API)."""
