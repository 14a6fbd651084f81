"""`python -m catalog`: ingest, search (and lineage, audit, roles) from the command line.

The demo mesh is seeded by `python -m sample_data seed`, which stands above the catalog.

Exit codes: 0 success, 1 something was rejected / found, 2 usage or engine error.
"""

from __future__ import annotations

import argparse
import json
import sys

from catalog import ingest as ingest_mod
from catalog import search as search_mod
from catalog.audit import AuditKeyError
from catalog.cli_args import Parser, bounded_int, db_arg
from catalog.settings import resolve_db_path
from catalog.store import StoreError, connect

MAX_SEARCH_LIMIT = 100_000


_Parser = Parser
_db_arg = db_arg


def build_parser(extra_commands=()) -> argparse.ArgumentParser:
    """`extra_commands`: callables `register(subparsers, db_arg)` from packages above the
    catalog (legal.cli), passed in by the program entry so this module never imports them."""
    parser = _Parser(prog="python -m catalog", description="meshgov catalog: the store of the mesh.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("ingest", help="ingest ODCS contracts (.yaml) and OpenLineage events (.json/.ndjson)",
                       description="Validate and store files; folders are read recursively. "
                                   "Exit 0 when nothing was rejected, 1 when anything was.")
    p.add_argument("paths", nargs="+", metavar="PATH")
    _db_arg(p)
    p.add_argument("--json", action="store_true", help="print one JSON object: accepted, rejected, warnings")
    p.add_argument("--summary", type=bounded_int(0, 100_000), nargs="?", const=20, metavar="N",
                   help="with --json: counts per outcome and the first N rejections and warnings "
                        "(default 20) instead of one entry per file or event")
    p.add_argument("--as", dest="actor", help="name recorded as the actor (default: OS user)")

    p = sub.add_parser("search", help="ranked search over products, owners, tags, columns")
    p.add_argument("query", nargs="?", default="")
    _db_arg(p)
    p.add_argument("--json", action="store_true", help="print a JSON list best first")
    p.add_argument("--limit", type=bounded_int(1, MAX_SEARCH_LIMIT), default=20,
                   help=f"products to show (1-{MAX_SEARCH_LIMIT}, default 20)")
    p.add_argument("--domain")
    p.add_argument("--owner")
    p.add_argument("--classification")

    p = sub.add_parser("reindex", help="rebuild the search index from what the store holds",
                       description="Rebuild the search index of every product (after a crash, or "
                                   "if search misses products). Searches also repair a stale index "
                                   "on their own; this forces a full rebuild and says what was stale.")
    _db_arg(p)

    try:
        from catalog import lineage_cli
        lineage_cli.add_parser(sub, _db_arg)
    except ImportError:
        pass
    try:
        from catalog import audit_cli
        audit_cli.add_parser(sub, _db_arg)
    except ImportError:
        pass
    from catalog import roles_cli, serve_check_cli
    roles_cli.add_parser(sub, _db_arg)
    serve_check_cli.add_parser(sub)
    for register in extra_commands:
        register(sub, _db_arg)
    return parser


def main(argv: list[str] | None = None, *, extra_commands=()) -> int:
    args = build_parser(extra_commands).parse_args(argv)
    try:
        return _dispatch(args)
    except (StoreError, AuditKeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args) -> int:
    db = resolve_db_path(args.db)
    if args.command == "ingest":
        with connect(db) as con:
            report = ingest_mod.ingest_paths(con, args.paths, actor=args.actor)
        if args.json:
            print(json.dumps(report.to_json() if args.summary is None else report.summary(first=args.summary),
                             indent=2))
        else:
            _print_report(report)
        return 1 if report.rejected else 0
    if args.command == "reindex":
        with connect(db) as con:
            stale = search_mod.refresh(con, full=True)
            products = con.execute("SELECT count(*) FROM products").fetchone()[0]
        print(f"search index rebuilt: {products} products ({stale} were stale or missing)")
        return 0
    if args.command == "search":
        with connect(db) as con:
            hits = search_mod.search(con, args.query, limit=args.limit, domain=args.domain,
                                     owner=args.owner, classification=args.classification)
        if args.json:
            print(json.dumps(hits[["product_id", "name", "domain", "score"]].to_dict("records"), indent=2))
        elif hits.empty:
            print("no products match; try fewer words or drop a filter")
        else:
            for row in hits.itertuples():
                print(f"{row.score:8.3f}  {row.product_id:<36} {row.name}  [{row.domain}]")
        return 0
    return args.handler(args, db)


def _print_report(report: ingest_mod.IngestReport) -> None:
    for item in report.accepted:
        state = "unchanged" if item.unchanged else "accepted"
        print(f"{state:<10} {item.file}  ({item.kind} {item.id} {item.version or ''})".rstrip())
    for item in report.warnings:
        print(f"warning    {item.file}: {item.message}")
    for item in report.rejected:
        print(f"rejected   {item.file}: {item.reason}")
    print(f"\n{len(report.accepted)} accepted, {len(report.warnings)} warnings, {len(report.rejected)} rejected")
