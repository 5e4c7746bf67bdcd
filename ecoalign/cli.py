"""The ``ecoalign`` command line. Each subcommand validates everything before it writes anything."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from ecoalign import __version__
from ecoalign.cli_errors import CliError, policy_option
from ecoalign.cli_models import add_model_arguments
from ecoalign.cli_models import model_settings as _align_settings

__all__ = ["CliError", "main"]


def _die(message: str) -> int:
    print(f"ecoalign: error: {message}", file=sys.stderr)
    return 2


# -- align --------------------------------------------------------------------------------------------------------
def add_align_parser(sub: Any) -> None:
    p = sub.add_parser("align", help="run one EcoAlign job and print the aligned answer")
    p.add_argument("text", help="the user's request")
    p.add_argument("--image", action="append", default=[], metavar="PATH", help="an image (repeatable)")
    p.add_argument("--budget", type=int, default=None, help="token budget of the job (default 4000)")
    p.add_argument("--strategy", default="ecoalign", help="ecoalign (default) or a baseline / ablation name")
    p.add_argument(
        "--policy",
        default=None,
        metavar="JSON|FILE",
        help="policy overrides: JSON, e.g. '{\"tau\": 0.6}', or a JSON file (as ecoalign tune writes)",
    )
    add_model_arguments(p)
    p.add_argument(
        "--db",
        default=os.environ.get("ECOALIGN_DB_URL"),
        help="database URL (default: $ECOALIGN_DB_URL, else sqlite file ./ecoalign.db)",
    )
    p.add_argument("--workers", type=int, default=4, help="threads running nodes in parallel")
    p.add_argument("--json", action="store_true", help="print the whole job (result, cost, graph) as JSON")
    p.add_argument("--mermaid", metavar="FILE", help="also write the thought graph as a Mermaid flowchart")
    p.set_defaults(func=cmd_align)


def _policy_from_args(args: argparse.Namespace) -> Any:
    from ecoalign.engine.policy import Policy, PolicyError

    overrides = policy_option(args.policy)
    if args.budget is not None:
        overrides["budget"] = args.budget
    try:
        return Policy.from_dict(overrides)
    except (PolicyError, TypeError) as exc:
        raise CliError(str(exc)) from None


def _request_from_args(args: argparse.Namespace, settings: Any) -> Any:
    from ecoalign.content import Request
    from ecoalign.media import MediaError, load_image_path

    text = args.text.strip()
    if not text:
        raise CliError("the request text is empty")
    if len(text) > settings.max_text_chars:
        raise CliError(f"the request text has {len(text)} characters, over {settings.max_text_chars}")
    if len(args.image) > settings.max_images:
        raise CliError(f"{len(args.image)} images, over the limit of {settings.max_images}")
    try:
        images = tuple(load_image_path(path, settings.max_image_bytes) for path in args.image)
    except MediaError as exc:
        raise CliError(str(exc)) from None
    return Request(text=text, images=images)


def cmd_align(args: argparse.Namespace) -> int:
    from ecoalign.engine.strategies import get_strategy
    from ecoalign.runtime import controller
    from ecoalign.runtime.factory import ServiceError
    from ecoalign.runtime.report import full_report
    from ecoalign.runtime.root import Root
    from ecoalign.runtime.waiting import run_and_wait
    from ecoalign.settings import get_settings
    from ecoalign.store.db import run_in_transaction
    from ecoalign.store.migrate import ensure_schema

    settings = get_settings()
    try:
        get_strategy(args.strategy)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    policy = _policy_from_args(args)
    request = _request_from_args(args, settings)
    if args.mermaid and not os.path.isdir(os.path.dirname(os.path.abspath(args.mermaid))):
        raise CliError(f"--mermaid: folder does not exist: {os.path.dirname(os.path.abspath(args.mermaid))}")
    if args.model_url and not args.model:
        raise CliError("--model-url needs --model (or $ECOALIGN_MODEL)")
    root = Root(_align_settings(settings, args))  # this process's one composition root
    try:
        try:
            services = root.services()
        except ServiceError as exc:
            raise CliError(str(exc)) from None
        ensure_schema(root.settings.db_url)
        factory = root.sessions()
        job_id, _ = run_in_transaction(
            factory, lambda s: controller.submit(s, request, policy, strategy=args.strategy)
        )
        # Nothing else runs this job: once the driver returns it is terminal, or stuck (then say so, do not wait).
        outcome = run_and_wait(factory, services, job_id, workers=args.workers, timeout_s=0, spans=root.job_spans())
        report = run_in_transaction(factory, lambda s: full_report(s, job_id))
    finally:
        root.close()
    if args.mermaid:
        from ecoalign.runtime.visual import graph_mermaid

        with open(args.mermaid, "w", encoding="utf-8") as out:
            out.write(graph_mermaid(report))
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        print(render_report(report))
    return 0 if outcome.succeeded else 1


def render_report(report: dict[str, Any]) -> str:
    """A person-readable summary: decision, answer, cost, and the graph as a tree."""
    lines = [
        f"job {report['job_id']}: {report['status']}, {report['decision'] or '-'} ({report.get('reason') or ''})",
        f"path safety {_fmt(report['path_safety'])}  utility {_fmt(report['utility'])}  "
        f"tokens {report['cost']['total_tokens']} of {report['budget']['total']}  "
        f"model calls {report['cost']['model_calls']}",
        "",
        (report["response"] or "").strip(),
        "",
        "graph:",
    ]
    nodes = {n["id"]: n for n in report["graph"]["nodes"]}
    children: dict[str, list[str]] = {}
    for n in report["graph"]["nodes"]:
        for p in n["parents"][:1]:
            children.setdefault(p, []).append(n["id"])
    chosen = set(report["path"])

    def walk(node_id: str, depth: int) -> None:
        n = nodes[node_id]
        mark = "*" if node_id in chosen else " "
        text = " ".join((n["text"] or "").split())[:60]
        lines.append(
            f"{mark} {'  ' * depth}{n['kind']:<8} {n['status']:<7} s={_fmt(n['safety'])} u={_fmt(n['utility'])} "
            f"tok={n['tokens']:<5} {text}"
        )
        for child in children.get(node_id, []):
            walk(child, depth + 1)

    roots = [n["id"] for n in report["graph"]["nodes"] if not n["parents"]]
    for root in roots:
        walk(root, 0)
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# -- db -----------------------------------------------------------------------------------------------------------
def add_db_parser(sub: Any) -> None:
    p = sub.add_parser("db", help="database schema (Alembic migrations)")
    dbsub = p.add_subparsers(dest="db_command", required=True)
    up = dbsub.add_parser("upgrade", help="migrate the database to the newest schema")
    up.add_argument("--db", default=os.environ.get("ECOALIGN_DB_URL"))
    up.add_argument("revision", nargs="?", default="head")
    up.set_defaults(func=cmd_db_upgrade)
    down = dbsub.add_parser("downgrade", help="migrate the database down to a revision")
    down.add_argument("--db", default=os.environ.get("ECOALIGN_DB_URL"))
    down.add_argument("revision")
    down.set_defaults(func=cmd_db_downgrade)


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from ecoalign.settings import get_settings
    from ecoalign.store.migrate import upgrade

    url = args.db or get_settings().db_url
    upgrade(url, args.revision)
    print(f"database at {_safe_url(url)} upgraded to {args.revision}")
    return 0


def cmd_db_downgrade(args: argparse.Namespace) -> int:
    from ecoalign.settings import get_settings
    from ecoalign.store.migrate import downgrade

    url = args.db or get_settings().db_url
    downgrade(url, args.revision)
    print(f"database at {_safe_url(url)} downgraded to {args.revision}")
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


# -- entry point ----------------------------------------------------------------------------------------------------
def add_emulator_parser(sub: Any) -> None:
    """``ecoalign emulator``: every argument goes, unparsed, to the emulator's own parser, so the testing package
    is imported only when this command runs. (No argv string can contain NUL, so with "\\0" as its only prefix
    character this subparser takes every argument, options included, as the one positional.)"""
    p = sub.add_parser(
        "emulator",
        help="an OpenAI-compatible emulator for load and fault tests (never a model)",
        add_help=False,
        prefix_chars="\0",
    )
    p.add_argument("emulator_argv", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_emulator)


def cmd_emulator(args: argparse.Namespace) -> int:
    from ecoalign.testing.emulator import main as emulator_main

    return emulator_main(args.emulator_argv, description=None)


# Each builder adds one command; they import their heavy dependencies only when their command runs.
from api.cli import add_serve_parser, add_tenants_parser  # noqa: E402
from ecoalign.audit.cli import add_audit_parser  # noqa: E402
from ecoalign.bulk.cli import add_moderate_parser  # noqa: E402
from ecoalign.evaluation.cli import add_eval_parser, add_tune_parser  # noqa: E402
from ecoalign.export.cli import add_export_parser  # noqa: E402
from workers.cli import add_beat_parser, add_worker_parser  # noqa: E402

PARSER_BUILDERS: list[Callable[[Any], None]] = [
    add_align_parser,
    add_moderate_parser,
    add_db_parser,
    add_serve_parser,
    add_worker_parser,
    add_beat_parser,
    add_tenants_parser,
    add_emulator_parser,
    add_export_parser,
    add_eval_parser,
    add_tune_parser,
    add_audit_parser,
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ecoalign", description=__doc__)
    parser.add_argument("--version", action="version", version=f"ecoalign {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in PARSER_BUILDERS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except CliError as exc:
        return _die(str(exc))
    except KeyboardInterrupt:
        return _die("interrupted")


if __name__ == "__main__":
    sys.exit(main())
