"""``ecoalign worker`` / ``ecoalign beat`` exit with Celery's own status: a worker stopped by a fault exits non-zero
(it used to exit 0, which a supervisor restarting on failure only would leave down).

``Celery.start`` returns the code the worker command passes to ``ctx.exit(worker.exitcode)`` (celery/bin/worker.py,
Celery 5.7) instead of exiting; the commands must pass it on."""

from __future__ import annotations

import argparse

import pytest

from workers import cli
from workers.app import app


@pytest.mark.parametrize(("returned", "status"), [(1, 1), (0, 0), (None, 0), (2, 2)])
def test_the_worker_and_beat_exit_with_celerys_status(monkeypatch: pytest.MonkeyPatch, returned: object,
                                                     status: int) -> None:
    monkeypatch.setattr(app, "start", lambda argv: returned)
    args = argparse.Namespace(queues="ecoalign.model", pool=None, concurrency=None, loglevel="INFO", hostname=None,
                              schedule="unused-schedule")
    assert cli.cmd_worker(args) == status
    assert cli.cmd_beat(args) == status
