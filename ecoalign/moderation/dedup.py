"""Duplicates decided once: content keys, and the claim protocol that makes a repeated upload cost nothing.

Why: bulk moderation sees the same upload many times (re-posts, forwards, the same meme re-encoded). Each
content is decided once per scope (tenant, policy version and moderation model); a later copy reuses the decision
at zero tokens and its result points to the original trace (``ecoalign.duplicate_of``).

* **Exact key**: sha256 of the normalised text (Unicode NFKC, whitespace folded) and each image's bytes.
* **Near key** (items with images): the normalised text and the image count, plus each image's perceptual hash
  (``imagehash.phash``, 64 bits); a decided entry with the same near key whose every image is within
  ``threshold`` bits (Hamming distance) is a near duplicate: a re-encoded JPEG, a resized copy.
* **Claims** (``ecoalign.store.dedup``): the first worker to insert ``(scope, exact_key)`` decides it; a worker
  racing on the same new content finds the claim, waits for the decision and reuses it (two workers pay once).
  A claim not decided within ``claim_s`` (its worker died) is taken over. A waiter that runs out of ``wait_s``
  decides on its own (it pays, the result is still right).
"""

from __future__ import annotations

import hashlib
import io
import json
import time
import unicodedata
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from ecoalign.content import Request
from ecoalign.moderation.decisions import DUPLICATE, NOT_REUSABLE
from ecoalign.moderation.result import ModerationResult
from ecoalign.moderation.traces import request_summary
from ecoalign.settings import Settings
from ecoalign.store import dedup as store
from ecoalign.store.base import utcnow
from ecoalign.store.db import run_in_transaction

Fresh = Callable[[list[int]], list[ModerationResult]]


def normalise_text(text: str) -> str:
    """The text as the exact key sees it: NFKC (full-width and composed forms folded), whitespace runs as one space."""
    return " ".join(unicodedata.normalize("NFKC", text).split())


@dataclass(frozen=True)
class ContentKeys:
    exact: str
    near: str | None  # None without images (or when no image could be hashed)
    phashes: tuple[str, ...] = ()


def perceptual_hash(data: bytes) -> str | None:
    """The image's 64-bit perceptual hash in hex, or None if it cannot be decoded."""
    import imagehash
    from PIL import Image as PILImage

    try:
        with PILImage.open(io.BytesIO(data)) as img:
            return str(imagehash.phash(img))
    except Exception:  # an undecodable image has no near key; its exact key still works
        return None


def content_keys(request: Request) -> ContentKeys:
    text = normalise_text(request.text).encode("utf-8")
    exact = hashlib.sha256(b"text\x00" + text)
    for image in request.images:
        exact.update(b"\x00image\x00" + hashlib.sha256(image.data).digest())
    if not request.images:
        return ContentKeys(exact.hexdigest(), None)
    hashes = [perceptual_hash(image.data) for image in request.images]
    if any(h is None for h in hashes):
        return ContentKeys(exact.hexdigest(), None)
    near = hashlib.sha256(b"text\x00" + text + f"\x00images\x00{len(hashes)}".encode()).hexdigest()
    return ContentKeys(exact.hexdigest(), near, tuple(h for h in hashes if h is not None))


def hamming(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def scope_key(
    tenant_id: str | None, policy_id: str | None, policy_version: int | None, policy: dict[str, Any], model_id: str
) -> str:
    """The dedup scope: tenant, policy (its id and version and everything in force: a stored version is immutable,
    and a built-in or ad-hoc policy differs by its thresholds and budgets) and the moderation model. Another scope
    decides again."""
    policy_part: Any = {k: v for k, v in policy.items() if k not in ("judge_concurrency", "excerpt_chars")}
    policy_part["id"], policy_part["version"] = policy_id, policy_version
    blob = json.dumps([tenant_id, policy_part, model_id], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True)
class Match:
    """An earlier decision this item reuses."""

    trace_id: str
    result: dict[str, Any]
    kind: str  # exact | near
    distance: int = 0


def duplicate_result(request: Request, match: Match) -> ModerationResult:
    """The earlier decision as this item's result: zero tokens, a trace of its own pointing to the original."""
    original = match.result
    trace_id = uuid.uuid4().hex
    ecoalign = {k: v for k, v in original["ecoalign"].items() if k not in ("note", "duplicate", "duplicate_of")}
    duplicate = {"match": match.kind, "distance": match.distance, "decision": original["ecoalign"]["decision"]}
    ecoalign.update(decision=DUPLICATE, tokens=0, trace_id=trace_id, duplicate_of=match.trace_id,
                    duplicate=duplicate)
    trace = {
        "trace_id": trace_id,
        "request": request_summary(request),
        "duplicate_of": {"trace_id": match.trace_id, **duplicate},
        "decision": DUPLICATE,
        "flagged": original["flagged"],
        "tokens": 0,
    }
    return ModerationResult(
        flagged=original["flagged"],
        categories=dict(original["categories"]),
        category_scores=dict(original["category_scores"]),
        category_applied_input_types=dict(original["category_applied_input_types"]),
        ecoalign=ecoalign,
        trace=trace,
    )


@dataclass
class _Plan:
    """One moderate_many call: which items reuse a decision, which this worker decides, which wait."""

    keys: list[ContentKeys]
    leader: dict[str, int] = field(default_factory=dict)  # exact key -> first index in this call
    matched: dict[int, Match] = field(default_factory=dict)
    owned: dict[int, str] = field(default_factory=dict)  # index -> claim token
    waiting: list[int] = field(default_factory=list)


def deduplicator_for(
    sessions: sessionmaker[Session],
    settings: Settings,
    *,
    policy: dict[str, Any],
    model_id: str,
    tenant_id: str | None,
    policy_id: str | None = None,
    policy_version: int | None = None,
) -> Deduplicator | None:
    """The deduplicator of a moderator with this policy and model, in the settings' terms (None when
    ``ECOALIGN_DEDUP=false``)."""
    if not settings.dedup:
        return None
    return Deduplicator(
        sessions,
        scope=scope_key(tenant_id, policy_id, policy_version, policy, model_id),
        tenant_id=tenant_id,
        policy_id=policy_id,
        policy_version=policy_version,
        threshold=settings.dedup_hamming_threshold,
        claim_s=settings.dedup_claim_s,
        wait_s=settings.dedup_wait_s,
    )


class Deduplicator:
    """Decide each content once per scope (see the module's docstring). Thread-safe: all state is in the store."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        scope: str,
        tenant_id: str | None = None,
        policy_id: str | None = None,
        policy_version: int | None = None,
        threshold: int = 6,
        claim_s: float = 120.0,
        wait_s: float = 30.0,
        poll_s: float = 0.05,
    ) -> None:
        if not 0 <= threshold < store.BAND_COUNT:
            raise ValueError(f"the Hamming threshold must be in 0..{store.BAND_COUNT - 1}, got {threshold}")
        self.sessions = sessions
        self.scope = scope
        self.tenant_id = tenant_id
        self.policy_id = policy_id
        self.policy_version = policy_version
        self.threshold = threshold
        self.claim_s = claim_s
        self.wait_s = wait_s
        self.poll_s = poll_s

    def moderate_many(self, requests: Sequence[Request], fresh: Fresh) -> list[ModerationResult]:
        """Results for ``requests``: reused decisions where the content was decided already, ``fresh(indices)``
        for the rest (recorded for the copies to come)."""
        plan = _Plan([content_keys(r) for r in requests])
        for i, keys in enumerate(plan.keys):
            plan.leader.setdefault(keys.exact, i)
        leaders = sorted(set(plan.leader.values()))
        run_in_transaction(self.sessions, lambda s: self._lookup_or_claim(s, plan, leaders))
        results: dict[int, ModerationResult] = {}
        self._decide_owned(requests, plan, fresh, results)
        self._wait_for_others(requests, plan, fresh, results)
        for i, request in enumerate(requests):
            if i in results:
                continue
            leader_index = plan.leader[plan.keys[i].exact]
            match = plan.matched.get(i) or plan.matched.get(leader_index)
            if match is None:  # a copy, within this call, of what this call decided
                leader = results[leader_index]
                match = Match(leader.trace_id, leader.to_openai(), "exact")
            results[i] = duplicate_result(request, match)
        return [results[i] for i in range(len(requests))]

    # -- the protocol -----------------------------------------------------------------------------------------
    def _lookup_or_claim(self, session: Session, plan: _Plan, leaders: list[int]) -> None:
        """One transaction for a whole call: exact lookups, near lookups, then claims (a few statements)."""
        plan.matched.clear()
        plan.owned.clear()
        plan.waiting.clear()
        found = store.find_exact(session, self.scope, [plan.keys[i].exact for i in leaders])
        unseen: list[int] = []
        now = utcnow()
        expires = now + timedelta(seconds=self.claim_s)
        for i in leaders:
            entry = found.get(plan.keys[i].exact)
            if entry is None:
                unseen.append(i)
            elif entry.decided:
                plan.matched[i] = Match(str(entry.trace_id), dict(entry.result or {}), "exact")
            else:
                self._take_or_wait(session, plan, i, now, expires)  # another worker's claim
        plan.matched.update(self._near(session, plan, unseen))
        claims = {i: uuid.uuid4().hex for i in unseen if i not in plan.matched}
        rows = [
            {"scope": self.scope, "exact_key": plan.keys[i].exact, "claim_token": token, "tenant_id": self.tenant_id,
             "policy_id": self.policy_id, "policy_version": self.policy_version, "near_key": plan.keys[i].near,
             "phashes": list(plan.keys[i].phashes) or None}
            for i, token in claims.items()
        ]
        held = store.claim(session, rows, expires_at=expires)
        for i, token in claims.items():
            if plan.keys[i].exact in held:
                plan.owned[i] = token
            else:  # a racing worker inserted it first
                plan.waiting.append(i)

    def _take_or_wait(self, session: Session, plan: _Plan, i: int, now: Any, expires: Any) -> None:
        token = uuid.uuid4().hex
        if store.take_over(session, self.scope, plan.keys[i].exact, token, expires, now):
            plan.owned[i] = token
        else:
            plan.waiting.append(i)

    def _near(self, session: Session, plan: _Plan, indices: list[int]) -> dict[int, Match]:
        """The closest decided near duplicate of each item with images, within ``threshold`` bits on every image."""
        queries = {i: plan.keys[i] for i in indices if plan.keys[i].near is not None and plan.keys[i].phashes}
        candidates = store.find_near(
            session, self.scope, [(str(k.near), k.phashes[0]) for k in queries.values()]
        )
        out: dict[int, Match] = {}
        for i, keys in queries.items():
            for entry in candidates.get(str(keys.near), []):
                theirs = entry.phashes or []
                if len(theirs) != len(keys.phashes) or entry.result is None:
                    continue
                distance = max(hamming(a, b) for a, b in zip(keys.phashes, theirs, strict=True))
                if distance <= self.threshold and (i not in out or distance < out[i].distance):
                    out[i] = Match(str(entry.trace_id), dict(entry.result), "near", distance)
        return out

    def _decide_owned(
        self, requests: Sequence[Request], plan: _Plan, fresh: Fresh, results: dict[int, ModerationResult]
    ) -> None:
        owned = sorted(plan.owned)
        if not owned:
            return
        try:
            decided = fresh(owned)
        except BaseException:
            run_in_transaction(self.sessions, lambda s: self._release(s, plan, owned))
            raise
        results.update(zip(owned, decided, strict=True))
        run_in_transaction(self.sessions, lambda s: self._record(s, plan, owned, results))

    def _record(self, session: Session, plan: _Plan, owned: list[int], results: dict[int, ModerationResult]) -> None:
        keep = []
        for i in owned:
            result, key, token = results[i], plan.keys[i].exact, plan.owned[i]
            if result.decision in NOT_REUSABLE:
                store.release(session, self.scope, key, token)
            else:
                keep.append((key, token, result.trace_id, result.to_openai()))
        store.record(session, self.scope, keep)

    def _release(self, session: Session, plan: _Plan, owned: list[int]) -> None:
        for i in owned:
            store.release(session, self.scope, plan.keys[i].exact, plan.owned[i])

    def _look_again(self, plan: _Plan, indices: list[int]) -> _Plan:
        retry = _Plan(plan.keys)
        run_in_transaction(self.sessions, lambda s: self._lookup_or_claim(s, retry, indices))
        return retry

    def _wait_for_others(
        self, requests: Sequence[Request], plan: _Plan, fresh: Fresh, results: dict[int, ModerationResult]
    ) -> None:
        """Items another worker is deciding: poll until decided; a claim that expired or vanished is taken (and
        decided here); past ``wait_s`` this worker decides the rest itself."""
        waiting = list(plan.waiting)
        deadline = time.monotonic() + self.wait_s
        while waiting:
            retry = self._look_again(plan, waiting)
            plan.matched.update(retry.matched)
            self._decide_owned(requests, retry, fresh, results)
            waiting = retry.waiting
            if not waiting:
                return
            if time.monotonic() >= deadline:
                results.update(zip(waiting, fresh(waiting), strict=True))
                return
            time.sleep(self.poll_s)
