"""Duplicates decided once: the keys (exact, and near for images), and the claim protocol on SQLite and on Postgres
with real concurrent processes racing on the same new content (they pay once)."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Image, Request
from ecoalign.evaluators.heuristic import HeuristicScanner
from ecoalign.moderation.dedup import Deduplicator, content_keys, hamming, scope_key
from ecoalign.moderation.judge import ChatModerationJudge
from ecoalign.moderation.moderator import Moderator
from ecoalign.moderation.result import ModerationResult
from ecoalign.providers.openai_http import OpenAIChatProvider
from ecoalign.store.db import make_engine, session_factory
from ecoalign.store.dedup_models import DedupEntry
from ecoalign.testing.emulator import EmulatorServer
from tests.moderation.dedup_images import as_jpeg, encoded, picture, resized

VERDICT = '{"flagged": true, "categories": {"illicit": 0.8}, "rationale": "lock picking"}'


def image_request(data: bytes, text: str = "look at this") -> Request:
    kind = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png"
    return Request(text, images=(Image(data=data, media_type=kind, source="test"),))


def test_the_exact_key_folds_whitespace_and_unicode_forms_and_nothing_else() -> None:
    folded = content_keys(Request(" How do I pick a lock? ")).exact
    assert content_keys(Request("How do I  pick\na lock?")).exact == folded
    assert content_keys(Request("ｌｏｃｋ")).exact == content_keys(Request("lock")).exact  # NFKC: full-width
    assert content_keys(Request("lock")).exact != content_keys(Request("Lock")).exact
    assert content_keys(Request("lock")).near is None  # no images, no near key


def test_re_encoded_and_resized_copies_are_near_and_other_pictures_are_not() -> None:
    original = picture(1)
    base = content_keys(image_request(encoded(original)))
    for copy in (as_jpeg(original), resized(original), as_jpeg(original.resize((200, 200)), quality=50)):
        keys = content_keys(image_request(copy))
        assert keys.exact != base.exact
        assert keys.near == base.near
        assert hamming(keys.phashes[0], base.phashes[0]) <= 6
    for seed in range(2, 12):
        other = content_keys(image_request(encoded(picture(seed))))
        assert hamming(other.phashes[0], base.phashes[0]) > 6, seed
    assert content_keys(image_request(encoded(original), text="other words")).near != base.near


def make_moderator(judge_url: str, sessions: sessionmaker[Session], *, tenant: str | None = None,
                   policy_id: str | None = None, version: int | None = None, wait_s: float = 30.0) -> Moderator:
    judge = ChatModerationJudge(OpenAIChatProvider(judge_url, "judge-emu", timeout_s=30, max_retries=0))
    moderator = Moderator(HeuristicScanner(), judge)
    moderator.dedup = Deduplicator(
        sessions, scope=scope_key(tenant, policy_id, version, moderator.policy.to_dict(), moderator.model_id),
        tenant_id=tenant, policy_id=policy_id, policy_version=version, wait_s=wait_s,
    )
    return moderator


def test_on_sqlite_a_copy_costs_nothing_points_to_the_original_and_a_new_policy_version_decides_again(
    sqlite_engine: Engine,
) -> None:
    sessions = session_factory(sqlite_engine)
    with EmulatorServer(rules=[(r"lock", VERDICT)], model="judge-emu") as emu:
        v1 = make_moderator(emu.base_url, sessions, policy_id="pol-1", version=1)
        first, same_call = v1.moderate_many([Request("How do I pick a lock?"), Request("How do I  pick a lock?")])
        assert first.decision == "judge"
        assert first.tokens > 0
        again = v1.moderate(Request("How do I pick a lock?"))
        v2 = make_moderator(emu.base_url, sessions, policy_id="pol-1", version=2).moderate(
            Request("How do I pick a lock?"))
        calls = emu.stats["chat_requests"]
    for copy in (same_call, again):
        assert copy.tokens == 0
        assert copy.ecoalign["duplicate_of"] == first.trace_id
        assert copy.ecoalign["duplicate"] == {"match": "exact", "distance": 0, "decision": "judge"}
        assert (copy.flagged, copy.categories, copy.category_scores) == (
            first.flagged, first.categories, first.category_scores)
        assert copy.trace_id != first.trace_id
    assert v2.decision == "judge"
    assert v2.tokens > 0  # another policy version: decided again
    assert calls == 2


def test_near_duplicates_reuse_the_decision_and_different_pictures_are_decided(sqlite_engine: Engine) -> None:
    sessions = session_factory(sqlite_engine)
    original = picture(7)
    with EmulatorServer(rules=[(r"look", VERDICT)], model="judge-emu") as emu:
        moderator = make_moderator(emu.base_url, sessions)
        first = moderator.moderate(image_request(encoded(original)))
        jpeg = moderator.moderate(image_request(as_jpeg(original)))
        small = moderator.moderate(image_request(resized(original)))
        other = moderator.moderate(image_request(encoded(picture(8))))
        calls = emu.stats["chat_requests"]
    assert first.decision == "judge"  # the heuristic cannot read images: uncertain, judged
    for copy in (jpeg, small):
        assert copy.tokens == 0
        assert copy.ecoalign["duplicate_of"] == first.trace_id
        assert copy.ecoalign["duplicate"]["match"] == "near"
    assert other.decision == "judge"
    assert other.tokens > 0
    assert calls == 2


def _race(db_url: str, judge_url: str, start_at: float, queue: Any) -> None:
    """One worker process: moderate the same new content at the same moment as the others."""
    engine = make_engine(db_url)
    moderator = make_moderator(judge_url, session_factory(engine), tenant=None)
    time.sleep(max(0.0, start_at - time.time()))
    result: ModerationResult = moderator.moderate(Request("How do I pick this lock quickly?"))
    queue.put((result.decision, result.tokens, result.trace_id, result.ecoalign.get("duplicate_of")))
    engine.dispose()


@pytest.mark.postgres
def test_on_postgres_processes_racing_on_the_same_new_content_pay_once(pg_clean_engine: Engine, pg_url: str) -> None:
    workers = 4
    with EmulatorServer(rules=[(r"lock", VERDICT)], model="judge-emu", latency_s=0.5) as emu:
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        start_at = time.time() + 4.0  # every process imported and connected by then
        procs = [ctx.Process(target=_race, args=(pg_url, emu.base_url, start_at, queue)) for _ in range(workers)]
        for p in procs:
            p.start()
        outcomes = [queue.get(timeout=90) for _ in procs]
        for p in procs:
            p.join(30)
        calls = emu.stats["chat_requests"]
    assert calls == 1, outcomes  # one judge call for four racing workers
    paid = [o for o in outcomes if o[1] > 0]
    assert len(paid) == 1
    assert paid[0][0] == "judge"
    copies = [o for o in outcomes if o[1] == 0]
    assert len(copies) == workers - 1
    assert all(o[0] == "duplicate" and o[3] == paid[0][2] for o in copies)
    with session_factory(pg_clean_engine)() as s:
        assert s.scalar(select(func.count()).select_from(DedupEntry)) == 1
