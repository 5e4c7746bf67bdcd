"""``ecoalign moderate INPUT.jsonl -o OUTPUT.jsonl``: the nightly bulk-moderation command.

Without ``--api`` it runs on the embedded default: in-process, offline models (OCR + MiniLM scanner), traces in
the SQLite file ``./ecoalign.db``. With ``--api URL`` it is a client of a running ecoalign (or any OpenAI-shaped)
``POST /v1/moderations``. Everything the user can get wrong is checked before a model loads or a line is written.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

from ecoalign.cli_errors import CliError, json_object_option


def add_moderate_parser(sub: Any) -> None:
    p = sub.add_parser(
        "moderate",
        help="moderate a JSONL file of image-text items (OpenAI Batch lines in, OpenAI Batch output lines out)",
        description="Moderate every line of INPUT into OUTPUT. Lines are OpenAI Batch input lines for "
        "/v1/moderations or {custom_id, text, images}. See docs/moderation.md.",
    )
    p.add_argument("input", metavar="INPUT.jsonl")
    p.add_argument("-o", "--output", required=True, metavar="OUTPUT.jsonl")
    p.add_argument("--resume", action="store_true", help="skip the custom_ids already in OUTPUT and append the rest")
    p.add_argument("--overwrite", action="store_true", help="start OUTPUT again if it already has lines")
    p.add_argument(
        "--api", metavar="URL", help="moderate through a remote POST /v1/moderations (e.g. http://host:8000)"
    )
    p.add_argument("--api-key", default=os.environ.get("ECOALIGN_API_KEY"), help="bearer key for --api")
    p.add_argument("--budget", type=int, default=None, metavar="TOKENS", help="token budget of the whole run")
    p.add_argument("--item-budget", type=int, default=None, metavar="TOKENS", help="token budget of one item")
    p.add_argument("--workers", type=int, default=2, help="parallel workers (default 2: one per core)")
    p.add_argument("--executor", choices=["thread", "process"], default="thread", help=argparse.SUPPRESS)
    p.add_argument("--chunk-size", type=int, default=16, help="items scanned together in one batch")
    p.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        metavar="N",
        help="BLAS threads of the text encoder (default: $OPENBLAS_NUM_THREADS, else 1: the workers already "
        "overlap the encoder with OCR, and spinning BLAS threads cost CPU on a busy machine)",
    )
    p.add_argument("--judge-url", default=os.environ.get("ECOALIGN_JUDGE_URL"), help="OpenAI base URL of an LLM judge")
    p.add_argument("--judge-model", default=os.environ.get("ECOALIGN_JUDGE_MODEL"), help="judge model name")
    p.add_argument(
        "--judge-text-only", action="store_true", help="send the judge the text and OCR text only, no image parts"
    )
    p.add_argument("--policy", metavar="JSON", help='moderation policy overrides, e.g. \'{"hi": 0.95, "lo": 0.05}\'')
    p.add_argument(
        "--policy-file",
        metavar="PATH",
        help="a moderation policy document (JSON or YAML, the schema of POST /v1/policies' document, plus optional "
        "id and version); --policy overrides apply on top",
    )
    p.add_argument(
        "--db",
        default=os.environ.get("ECOALIGN_DB_URL"),
        help="database for the traces (default: $ECOALIGN_DB_URL, else sqlite file ./ecoalign.db)",
    )
    p.add_argument("--no-traces", action="store_true", help="do not store decision traces")
    p.add_argument(
        "--no-dedup", action="store_true",
        help="decide every line, even content decided before (default: reuse decisions kept in --db)",
    )
    p.add_argument("--allow-remote-images", action="store_true", help="fetch http(s) image URLs (public hosts only)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--stats-json", metavar="PATH", help="write the run's counters and timings as JSON")
    p.set_defaults(func=cmd_moderate)


def _scanner(root: Any) -> Any:
    """The root's scanner (``ECOALIGN_EVALUATOR``, ``ecoalign.moderation.factory``), its errors as one-line CLI
    errors."""
    from ecoalign.moderation.factory import SetupError

    try:
        return root.scanner()
    except SetupError as exc:
        raise CliError(str(exc)) from None


def child_scanner(settings: Any) -> Any:
    """The scanner of an ``--executor process`` child: each child builds its own composition root (closed when the
    child exits). Module-level, so the process pool can pickle a ``functools.partial`` of it."""
    import atexit

    from ecoalign.runtime.root import Root

    root = Root(settings)
    atexit.register(root.close)
    return root.scanner()


def _policy(args: argparse.Namespace) -> Any:
    from ecoalign.moderation.policy import ModerationPolicy, PolicyError

    overrides = json_object_option(args.policy)
    if args.item_budget is not None:
        overrides["item_budget"] = args.item_budget
    base: dict[str, Any] = {}
    if args.policy_file:
        from ecoalign.policies.schema import PolicyFileError, load_policy_file

        try:
            base = load_policy_file(Path(args.policy_file)).to_dict()
        except PolicyFileError as exc:
            raise CliError(f"--policy-file: {exc}") from None
    try:
        return ModerationPolicy.from_dict({**base, **overrides})
    except (PolicyError, TypeError) as exc:
        raise CliError(f"--policy: {exc}") from None


def _validate(args: argparse.Namespace) -> None:
    if args.workers < 1:
        raise CliError("--workers must be >= 1")
    if args.chunk_size < 1:
        raise CliError("--chunk-size must be >= 1")
    if args.blas_threads is not None and args.blas_threads < 1:
        raise CliError("--blas-threads must be >= 1")
    if args.budget is not None and args.budget < 0:
        raise CliError("--budget must be >= 0")
    if args.item_budget is not None and args.item_budget < 0:
        raise CliError("--item-budget must be >= 0")
    if args.resume and args.overwrite:
        raise CliError("--resume and --overwrite exclude each other")
    if args.api:
        local_only = [
            f
            for f, v in (
                ("--budget", args.budget),
                ("--item-budget", args.item_budget),
                ("--judge-url", args.judge_url),
                ("--policy", args.policy),
                ("--policy-file", args.policy_file),
            )
            if v is not None
        ]
        if local_only:
            raise CliError(f"{', '.join(local_only)}: budgets and the judge are the server's in --api mode")
        if not args.api.startswith(("http://", "https://")):
            raise CliError(f"--api must be an http(s) URL, got {args.api!r}")
    if args.judge_url and not args.judge_model:
        raise CliError("--judge-url needs --judge-model (or $ECOALIGN_JUDGE_MODEL)")


def cmd_moderate(args: argparse.Namespace) -> int:
    from ecoalign.bulk.api_client import ApiClient
    from ecoalign.bulk.errors import RunError
    from ecoalign.bulk.runner import check_paths, run_moderation
    from ecoalign.moderation.inputs import ParseOptions
    from ecoalign.runtime.root import Root
    from ecoalign.settings import get_settings

    _validate(args)
    src, dst = Path(args.input), Path(args.output)
    try:
        check_paths(src, dst, resume=args.resume, overwrite=args.overwrite)
    except RunError as exc:
        raise CliError(str(exc)) from None
    settings = get_settings()
    options = ParseOptions.from_settings(
        src.resolve().parent, allow_remote=args.allow_remote_images or settings.allow_remote_images
    )
    common: dict[str, Any] = {
        "resume": args.resume,
        "overwrite": args.overwrite,
        "workers": args.workers,
        "progress": not args.no_progress,
        "options": options,
        "chunk_size": args.chunk_size,
    }
    closers: list[Any] = []
    if not args.api:
        _limit_malloc_arenas()
        closers.append(_limit_blas_threads(args.blas_threads))
    try:
        if args.api:
            client = ApiClient(args.api, args.api_key, concurrency=args.workers)
            closers.append(client.close)
            summary = run_moderation(src, dst, chunk_fn=client.chunk_fn(options), store_traces=False, **common)
        else:
            root = Root(settings)  # this process's one composition root
            closers.append(root.close)
            moderator = _moderator(args, root, closers)
            if not args.no_dedup:
                moderator.dedup = _deduplicator(args.db or settings.db_url, settings, moderator, closers)
            summary = run_moderation(
                src,
                dst,
                budget=args.budget if args.budget is not None else moderator.policy.run_budget,
                moderator=moderator,
                db_url=args.db or settings.db_url,
                store_traces=not args.no_traces,
                executor=args.executor,
                scanner_factory=functools.partial(child_scanner, settings),
                **common,
            )
    except RunError as exc:
        print(f"ecoalign: error: {exc}", file=sys.stderr)
        return 1
    finally:
        for close in closers:
            close()
    if args.stats_json:
        Path(args.stats_json).write_text(json.dumps(summary.to_dict(), indent=2) + "\n")
    print(_summary_line(summary, dst), file=sys.stderr)
    return 0


MALLOC_ARENAS = 2


def _limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process (and, through ``MALLOC_ARENA_MAX``, for process workers).

    glibc gives threads that contend for the heap arenas of their own, up to 8 per core, and each keeps the memory
    it freed: with the worker, OCR and encoder threads of a run the resident size then drifts by tens of MB,
    more on a busy machine (docs/moderation.md: a 10,000-line resume at 422-456 MB with the default, a flat
    384-388 MB with two arenas, at the same speed). Called before the models load, while the process has one
    thread. A ``MALLOC_ARENA_MAX`` already in the environment is left as it is. Returns whether it applied."""
    if os.environ.get("MALLOC_ARENA_MAX") or not sys.platform.startswith("linux"):
        return False
    os.environ["MALLOC_ARENA_MAX"] = str(arenas)
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_arena_max = -8  # from malloc.h
        return bool(libc.mallopt(m_arena_max, arenas))
    except (OSError, AttributeError):  # not glibc (musl has no arenas to cap)
        return False


_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def _limit_blas_threads(threads: int | None) -> Any:
    """Limit the BLAS threads of the text encoder's matrix products for this run; returns the undo.

    Measured (docs/moderation.md): one BLAS thread costs 2.5x less CPU per text than two on this 2-core machine
    and is faster in wall time too, because the runner's workers already keep both cores busy (OCR on one, the
    encoder on the other) and idle BLAS threads spin. The variables reach the libraries that load later and
    ``--executor process`` children; ``threadpoolctl`` (when installed) limits a BLAS that is already loaded."""
    if threads is None:
        env = os.environ.get("OPENBLAS_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else 1
    saved = {name: os.environ.get(name) for name in _BLAS_ENV}
    for name in _BLAS_ENV:
        os.environ[name] = str(threads)
    limiter = None
    if "numpy" in sys.modules:
        try:
            from threadpoolctl import threadpool_limits

            limiter = threadpool_limits(limits=threads, user_api="blas")
        except ImportError:  # pragma: no cover - threadpoolctl comes with the offline extra
            limiter = None

    def undo() -> None:
        if limiter is not None:
            limiter.restore_original_limits()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    return undo


def _moderator(args: argparse.Namespace, root: Any, closers: list[Any]) -> Any:
    from ecoalign.moderation.moderator import Moderator

    policy = _policy(args)
    judge = _judge(args, root.settings, policy, closers) if args.judge_url else None
    scanner = _scanner(root)
    return Moderator(scanner, judge=judge, policy=policy)


def _deduplicator(db_url: str, settings: Any, moderator: Any, closers: list[Any]) -> Any:
    """The run's deduplicator (``ecoalign.moderation.dedup``) on the traces' database: no tenant, the run's
    policy and model as the scope, so a rerun over the same lines reuses their decisions."""
    from ecoalign.moderation.dedup import deduplicator_for
    from ecoalign.store.db import make_engine, session_factory
    from ecoalign.store.migrate import ensure_schema

    ensure_schema(db_url)
    engine = make_engine(db_url)
    closers.append(engine.dispose)
    return deduplicator_for(
        session_factory(engine), settings, policy=moderator.policy.to_dict(), model_id=moderator.model_id,
        tenant_id=None,
    )


def _judge(args: argparse.Namespace, settings: Any, policy: Any, closers: list[Any]) -> Any:
    """The one moderation judge (``ecoalign.moderation.judge``) over ``--judge-url``, checked reachable now."""
    from ecoalign.moderation.factory import judge_provider
    from ecoalign.moderation.judge import ChatModerationJudge
    from ecoalign.providers.base import ProviderError

    concurrency = max(policy.judge_concurrency, args.workers)
    provider = judge_provider(settings, args.judge_url, args.judge_model, concurrency=concurrency)
    closers.append(provider.close)
    try:
        provider.check()
    except ProviderError as exc:
        raise CliError(f"the judge at {args.judge_url} does not answer: {exc}") from None
    return ChatModerationJudge(provider, send_images=False if args.judge_text_only else None)


def _summary_line(summary: Any, dst: Path) -> str:
    done = f"{summary.items} lines written to {dst}"
    if summary.skipped:
        done += f" ({summary.skipped} already done)"
    decisions = ", ".join(f"{k} {v}" for k, v in sorted(summary.decisions.items()))
    return (
        f"ecoalign: moderate: {done}: {summary.results} results, {summary.flagged} flagged, {summary.errors} error "
        f"lines, {summary.tokens} tokens, {summary.seconds:.1f} s ({summary.items_per_s:.1f} items/s)"
        + (f"; {decisions}" if decisions else "")
    )
