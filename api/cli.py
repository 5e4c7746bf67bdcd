"""``ecoalign serve``, ``ecoalign tenants ...`` and ``ecoalign keys ...``: the API's server and its admin commands.

Registered in ``ecoalign.cli.PARSER_BUILDERS``. Imports stay inside the command functions so that ``ecoalign
--help`` does not load FastAPI, SQLAlchemy or uvicorn. Commands that create a key print the secret on their
**last line** and nowhere else (only its sha256 is stored), so scripts can take it with ``tail -n 1``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from typing import Any


def _db_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", default=os.environ.get("ECOALIGN_DB_URL"),
                        help="database URL (default: $ECOALIGN_DB_URL, else the settings' default)")


def _budget(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number of tokens: {value!r}") from None
    if number < 0:
        raise argparse.ArgumentTypeError("a token budget cannot be negative")
    return number


# ``tenants limits`` options: (flag, tenant_limits column, help).
LIMIT_FLAGS = (
    ("--rps", "requests_per_second", "API requests per second, chat and moderation excluded"),
    ("--chat-rps", "chat_requests_per_second", "/v1/chat/completions requests per second"),
    ("--moderation-rps", "moderation_requests_per_second", "/v1/moderations requests per second"),
    ("--max-concurrent-jobs", "max_concurrent_jobs", "jobs queued or running at once"),
    ("--max-batch-lines", "max_batch_lines_in_flight", "Batch lines not yet finished, over all batches"),
)
_OFF = -1  # what ``_limit`` returns for "off": clear the limit


def _limit(value: str) -> int:
    if value.strip().lower() in ("off", "none", "unlimited"):
        return _OFF
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number or 'off': {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("a limit must be at least 1 (or 'off')")
    return number


def add_tenants_parser(sub: Any) -> None:
    """``tenants create|list`` and ``keys create|revoke``."""
    tenants = sub.add_parser("tenants", help="create and list tenants (API customers)")
    tsub = tenants.add_subparsers(dest="tenants_command", required=True)
    create = tsub.add_parser("create", help="create a tenant and its first API key (printed on the last line)")
    create.add_argument("name", help="unique tenant name")
    create.add_argument("--budget-total", type=_budget, default=None, metavar="N",
                        help="tokens the tenant may spend in all (default: unlimited)")
    create.add_argument("--budget-daily", type=_budget, default=None, metavar="N",
                        help="tokens the tenant may spend per UTC day (default: unlimited)")
    _db_argument(create)
    create.set_defaults(func=cmd_tenants_create)
    limits = tsub.add_parser("limits", help="set or clear a tenant's rate and concurrency limits (429 when over)")
    limits.add_argument("tenant", help="tenant name or id")
    for flag, column, what in LIMIT_FLAGS:
        limits.add_argument(flag, dest=column, type=_limit, default=None, metavar="N|off",
                            help=f"{what} (off: no limit; not given: unchanged)")
    _db_argument(limits)
    limits.set_defaults(func=cmd_tenants_limits)
    listing = tsub.add_parser("list", help="list tenants with their budgets, usage and active keys")
    _db_argument(listing)
    listing.set_defaults(func=cmd_tenants_list)

    keys = sub.add_parser("keys", help="create and revoke API keys")
    ksub = keys.add_subparsers(dest="keys_command", required=True)
    kcreate = ksub.add_parser("create", help="a new key for a tenant (printed on the last line)")
    kcreate.add_argument("tenant", help="tenant name or id")
    kcreate.add_argument("--name", default="", help="a label for the key")
    _db_argument(kcreate)
    kcreate.set_defaults(func=cmd_keys_create)
    revoke = ksub.add_parser("revoke", help="revoke the key with this prefix (as printed by create/list)")
    revoke.add_argument("prefix", help="the key's prefix, e.g. eco_AbCdEfGh, or the whole key")
    _db_argument(revoke)
    revoke.set_defaults(func=cmd_keys_revoke)


def add_serve_parser(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the HTTP API (uvicorn)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)


# -- commands -------------------------------------------------------------------------------------------------------
def _sessions(args: argparse.Namespace) -> Any:
    """A session factory on the migrated database, or a one-line error saying how to migrate it."""
    from ecoalign.cli_errors import CliError
    from ecoalign.settings import get_settings
    from ecoalign.store import migrate
    from ecoalign.store.db import make_engine, session_factory

    url = args.db or get_settings().db_url
    engine = make_engine(url)
    try:
        current = migrate.current_revision(engine)
    except Exception as exc:
        raise CliError(f"cannot reach the database: {exc.__class__.__name__}: {exc}") from None
    if current is None:
        raise CliError("the database has no schema yet; run `ecoalign db upgrade` first")
    return session_factory(engine)


def cmd_tenants_create(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import IntegrityError

    from ecoalign.cli_errors import CliError
    from ecoalign.store import tenants
    from ecoalign.store.db import session_scope

    name = args.name.strip()
    if not name or len(name) > 200:
        raise CliError("a tenant name must have 1 to 200 characters")
    try:
        with session_scope(_sessions(args)) as session:
            tenant, key, secret = tenants.create_tenant_with_key(
                session, name, token_budget_total=args.budget_total, token_budget_daily=args.budget_daily
            )
            tenant_id, prefix = tenant.id, key.prefix
    except IntegrityError:
        raise CliError(f"a tenant named {name!r} already exists") from None
    print(f"tenant {tenant_id} ({name}) created; budget total {_fmt(args.budget_total)}, "
          f"daily {_fmt(args.budget_daily)}")
    print(f"API key {prefix}... (shown once; only its hash is stored):")
    print(secret)
    return 0


def cmd_tenants_limits(args: argparse.Namespace) -> int:
    from ecoalign.cli_errors import CliError
    from ecoalign.store import tenants
    from ecoalign.store.db import session_scope

    values = {column: (None if getattr(args, column) == _OFF else getattr(args, column))
              for _, column, _ in LIMIT_FLAGS if getattr(args, column) is not None}
    with session_scope(_sessions(args)) as session:
        tenant = tenants.find_tenant(session, args.tenant)
        if tenant is None:
            raise CliError(f"no tenant named or with id {args.tenant!r}")
        row = tenants.set_limits(session, tenant.id, values)
        shown = "  ".join(f"{flag.lstrip('-')}={_fmt(getattr(row, column))}" for flag, column, _ in LIMIT_FLAGS)
        name = tenant.name
    print(f"tenant {name} limits: {shown}")
    return 0


def cmd_tenants_list(args: argparse.Namespace) -> int:
    from ecoalign.store import tenants
    from ecoalign.store.db import session_scope

    with session_scope(_sessions(args)) as session:
        rows = tenants.list_tenants(session)
        lines = [
            f"{s.tenant.id}  {s.tenant.name:<24} total={_fmt(s.tenant.token_budget_total):<12} "
            f"daily={_fmt(s.tenant.token_budget_daily):<12} spent={s.tenant.tokens_spent:<10} "
            f"reserved={s.tenant.tokens_reserved:<8} keys={s.active_keys}"
            for s in rows
        ]
    print("\n".join(lines) if lines else "no tenants")
    return 0


def cmd_keys_create(args: argparse.Namespace) -> int:
    from ecoalign.cli_errors import CliError
    from ecoalign.store import tenants
    from ecoalign.store.db import session_scope

    with session_scope(_sessions(args)) as session:
        tenant = tenants.find_tenant(session, args.tenant)
        if tenant is None:
            raise CliError(f"no tenant named or with id {args.tenant!r}")
        key, secret = tenants.create_api_key(session, tenant.id, name=args.name)
        tenant_name, prefix = tenant.name, key.prefix
    print(f"API key {prefix}... for tenant {tenant_name} (shown once; only its hash is stored):")
    print(secret)
    return 0


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from ecoalign.cli_errors import CliError
    from ecoalign.store import tenants
    from ecoalign.store.db import session_scope

    try:
        with session_scope(_sessions(args)) as session:
            key = tenants.revoke_key_by_prefix(session, args.prefix.strip().removesuffix("..."))
            prefix = key.prefix if key is not None else None
    except tenants.AmbiguousKey as exc:
        raise CliError(str(exc)) from None
    if prefix is None:
        raise CliError(f"no active key starts with {args.prefix!r}")
    print(f"API key {prefix}... revoked")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    if args.workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Several processes answer /metrics: share HTTP counters through files so any one scrape sees them all.
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="ecoalign-metrics-")
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=args.log_level,
        proxy_headers=True,
    )
    return 0


def _fmt(value: int | None) -> str:
    return "unlimited" if value is None else str(value)
