"""Signing, the backoff schedule, the target rules and the event table, without a database."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from ecoalign.store.models import JobStatus
from ecoalign.webhooks.backoff import RetrySchedule
from ecoalign.webhooks.events import EVENTS, batch_event, job_event
from ecoalign.webhooks.signing import body_bytes, new_secret, signed_headers
from ecoalign.webhooks.targets import TargetRefused, check_target


def test_a_signed_body_verifies_with_the_library_and_a_changed_one_does_not() -> None:
    secret = new_secret()
    body = body_bytes({"type": "batch.completed", "data": {"id": "batch_1"}})
    headers = signed_headers(secret, "msg_1", datetime.now(UTC), body)
    assert Webhook(secret).verify(body, headers)["data"]["id"] == "batch_1"
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace(b"batch_1", b"batch_2"), headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    assert secret.startswith("whsec_")
    assert new_secret() != secret


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    schedule = RetrySchedule(base_s=30, max_delay_s=3600, window_s=86_400)
    rng = random.Random(1)
    for attempt in range(1, 15):
        ceiling = min(3600, 30 * 2 ** (attempt - 1))
        assert ceiling / 2 <= schedule.delay_s(attempt, rng) <= ceiling
    total, attempt = 0.0, 0
    while total < schedule.window_s:
        attempt += 1
        total += schedule.delay_s(attempt, rng)
    assert 10 <= attempt <= 40  # about a day of retries, in a bounded number of attempts


def fake_dns(*addresses: str):  # type: ignore[no-untyped-def]
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(("url", "addresses"), [
    ("https://hooks.example.com/x", ("10.0.0.7",)),
    ("https://hooks.example.com/x", ("93.184.216.34", "192.168.1.1")),  # one internal answer is enough
    ("https://metadata.example.com/", ("169.254.169.254",)),
    ("https://hooks.example.com/x", ("::ffff:127.0.0.1",)),
    ("https://127.0.0.1/x", ()),
    ("https://[::1]/x", ()),
    ("http://hooks.example.com/x", ("93.184.216.34",)),  # plain http
    ("https://user:pw@hooks.example.com/x", ("93.184.216.34",)),
    ("ftp://hooks.example.com/x", ("93.184.216.34",)),
])
def test_targets_follow_the_remote_image_rules(url: str, addresses: tuple[str, ...]) -> None:
    with pytest.raises(TargetRefused):
        check_target(url, resolve=fake_dns(*addresses))


def test_a_public_target_is_pinned_to_its_checked_address_and_loopback_needs_the_test_setting() -> None:
    target = check_target("https://hooks.example.com:8443/in?a=1", resolve=fake_dns("93.184.216.34"))
    assert target.url.host == "93.184.216.34"
    assert target.url.port == 8443
    assert target.host_header == "hooks.example.com:8443"
    with pytest.raises(TargetRefused, match="non-public"):
        check_target("http://127.0.0.1:9/hooks")
    assert check_target("http://127.0.0.1:9/hooks", loopback=True).url.host == "127.0.0.1"
    with pytest.raises(TargetRefused):
        check_target("http://10.1.2.3/hooks", loopback=True)  # loopback only, not every internal address


def test_every_terminal_status_has_its_event() -> None:
    for status in JobStatus:
        if status.terminal:
            assert job_event(status.value) in EVENTS
    for status in ("completed", "failed", "cancelled", "expired"):
        assert batch_event(status) in EVENTS


def test_during_a_rotation_both_secrets_verify() -> None:
    old, new = new_secret(), new_secret()
    body = body_bytes({"type": "job.failed"})
    headers = signed_headers((new, old), "msg_2", datetime.now(UTC), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, headers) == {"type": "job.failed"}
    assert Webhook(new).verify(body, headers) == {"type": "job.failed"}
