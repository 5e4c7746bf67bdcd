"""The Celery app's configuration and the ``ecoalign worker`` / ``beat`` commands (no broker needed)."""

from __future__ import annotations

import argparse

import pytest

from ecoalign.cli import build_parser
from ecoalign.queue.names import (
    ADVANCE_TASK,
    CONTROL_QUEUE,
    GENERATE_TASK,
    MODEL_QUEUE,
    REAP_TASK,
    SCAN_TASK,
    SCORE_QUEUE,
)
from ecoalign.settings import Settings
from workers.app import ConfigError, app, celery_config
from workers.cli import default_pool, worker_argv


def test_delivery_settings_are_at_least_once_and_bounded() -> None:
    conf = app.conf
    assert conf.task_acks_late
    assert conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.task_ignore_result
    assert conf.task_serializer == "json"
    assert conf.accept_content == ["json"]
    assert conf.task_soft_time_limit < conf.task_time_limit < conf.broker_transport_options["visibility_timeout"]


def test_routes_put_each_task_on_its_queue() -> None:
    routes = app.conf.task_routes
    assert routes[ADVANCE_TASK]["queue"] == CONTROL_QUEUE
    assert routes[REAP_TASK]["queue"] == CONTROL_QUEUE
    assert routes[GENERATE_TASK]["queue"] == MODEL_QUEUE
    assert routes[SCAN_TASK]["queue"] == SCORE_QUEUE
    assert {q.name for q in app.conf.task_queues} == {CONTROL_QUEUE, MODEL_QUEUE, SCORE_QUEUE}
    assert app.conf.beat_schedule["ecoalign-reap"]["task"] == REAP_TASK


def test_tasks_are_registered_under_their_names() -> None:
    app.loader.import_default_modules()
    assert {ADVANCE_TASK, GENERATE_TASK, SCAN_TASK, REAP_TASK} <= set(app.tasks)


def test_time_limits_at_or_above_the_visibility_timeout_are_refused() -> None:
    with pytest.raises(ConfigError, match="visibility"):
        celery_config(Settings(task_time_limit_s=600, broker_visibility_timeout_s=600))
    with pytest.raises(ConfigError):
        celery_config(Settings(task_soft_time_limit_s=400, task_time_limit_s=300))
    conf = celery_config(Settings(broker_visibility_timeout_s=900, reaper_interval_s=5))
    assert conf["broker_transport_options"]["visibility_timeout"] == 900
    assert conf["beat_schedule"]["ecoalign-reap"]["schedule"] == 5


def test_worker_command_picks_the_pool_that_suits_the_queues() -> None:
    assert default_pool([MODEL_QUEUE]) == "threads"
    assert default_pool([SCORE_QUEUE]) == "prefork"
    args = build_parser().parse_args(["worker", "--queues", MODEL_QUEUE])
    argv = worker_argv(args)
    assert argv[0] == "worker"
    assert f"--queues={MODEL_QUEUE}" in argv
    assert "--pool=threads" in argv
    assert "--concurrency=16" in argv
    args = build_parser().parse_args(["worker", "--queues", f"{CONTROL_QUEUE},{SCORE_QUEUE}", "--concurrency", "3"])
    assert "--pool=prefork" in worker_argv(args)
    assert "--concurrency=3" in worker_argv(args)
    with pytest.raises(SystemExit, match="unknown queue"):
        worker_argv(argparse.Namespace(queues="nope", pool=None, concurrency=None, loglevel="INFO", hostname=None))
    assert build_parser().parse_args(["beat"]).func.__name__ == "cmd_beat"


def test_enqueue_advance_fails_fast_when_the_broker_is_down() -> None:
    """The API must not hang on a broker outage: the job is in Postgres and the reaper will enqueue it."""
    import time

    from ecoalign.queue.dispatch import enqueue_advance
    from ecoalign.testing.emulator import free_port
    from tests.workers.cluster import point_dispatch_at

    before = app.conf.broker_url
    point_dispatch_at(f"redis://127.0.0.1:{free_port()}/0")
    try:
        started = time.monotonic()
        assert enqueue_advance("some-job") is False
        assert time.monotonic() - started < 15
    finally:
        point_dispatch_at(before)
