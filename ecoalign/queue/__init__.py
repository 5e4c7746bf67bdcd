"""The task queue as the rest of ecoalign sees it: queue and task names, the Celery app's configuration, the
broker transport, and dispatch (sending a task by name). The task bodies live in ``workers/``, which imports this;
the API enqueues through ``dispatch`` and never imports a worker module."""
