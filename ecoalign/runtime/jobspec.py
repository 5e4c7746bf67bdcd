"""A job's spec (request, policy, strategy, tenant) as every step reads it, and a small per-process cache of it.

Why a cache: a job's request, policy, strategy and tenant never change after ``submit``, so a worker need not
read and decode the job row again for every node.

Why it is a module-level memo and not a member of the process's composition root (``ecoalign.runtime.root``): it
holds no resource (nothing to close, nothing a forked child must not use: an inherited entry is still right), and
its key is global: job ids are random uuid4s, so one id names one job in every database a process may see, and a
spec read from any of them is the same immutable value. Threading a cache object through every controller and
node step would add a parameter without changing a result.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.orm import Session

from ecoalign.content import Request
from ecoalign.engine.policy import Policy
from ecoalign.engine.search import Search
from ecoalign.engine.strategies import get_strategy
from ecoalign.runtime.requests import request_from_messages
from ecoalign.store import repository
from ecoalign.store.models import Job

MAX_STORED_IMAGE_BYTES = 64 * 1024 * 1024  # the request was validated on the way in; this only guards decoding
SPEC_CACHE_SIZE = 256
SPEC_CACHE_MAX_IMAGE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class JobSpec:
    """Everything a step needs from the job row, read once per step."""

    job_id: str
    request: Request
    policy: Policy
    strategy: str
    tenant_id: str | None

    @cached_property
    def engine(self) -> Search:
        """The job's search machine, built once: it holds no state between steps (``Search`` is memoryless)."""
        return self.search()

    def search(self) -> Search:
        return Search(
            self.policy,
            get_strategy(self.strategy),
            request_chars=len(self.request.text),
            image_count=len(self.request.images),
        )


def job_spec(job: Job) -> JobSpec:
    request = request_from_messages(job.request["messages"], max_image_bytes=MAX_STORED_IMAGE_BYTES, max_images=64)
    return JobSpec(job.id, request, Policy.from_dict(job.policy), job.strategy, job.tenant_id)


_spec_cache: OrderedDict[str, JobSpec] = OrderedDict()
_spec_lock = threading.Lock()


def cached_job_spec(session: Session, job_id: str) -> JobSpec | None:
    """The job's spec, from the per-process cache when possible (None if there is no such job).

    Requests with more than 1 MiB of images are not kept (the cache must stay small).
    """
    with _spec_lock:
        spec = _spec_cache.get(job_id)
        if spec is not None:
            _spec_cache.move_to_end(job_id)
            return spec
    job = repository.get_job(session, job_id)
    if job is None:
        return None
    spec = job_spec(job)
    if sum(len(image.data) for image in spec.request.images) <= SPEC_CACHE_MAX_IMAGE_BYTES:
        with _spec_lock:
            _spec_cache[job_id] = spec
            while len(_spec_cache) > SPEC_CACHE_SIZE:
                _spec_cache.popitem(last=False)
    return spec
