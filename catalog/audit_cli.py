"""`python -m catalog audit`: verify, anchor, list and export the audit trail.

Plugged into catalog.cli by `add_parser`. An export is audited as the OS user (or
`--as NAME`); see catalog.access.cli_user for why the CLI acts with admin rights.
Exit codes: 0 success / intact, 1 broken chain, 2 usage or engine error.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from catalog import access, audit_query, audit_verify
from catalog.cli_args import bounded_int
from catalog.store import connect


def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", help="actor contains this text (case-insensitive)")
    parser.add_argument("--action", action="append", help="exact action; repeat for several")
    parser.add_argument("--target", help="target contains this text, e.g. a product id")
    parser.add_argument("--since", help="from this UTC date or ISO time (inclusive)")
    parser.add_argument("--until", help="up to this UTC date or ISO time (inclusive)")


def add_parser(subparsers, db_arg) -> None:
    p = subparsers.add_parser("audit", help="verify, list and export the tamper-evident audit trail")
    sub = p.add_subparsers(dest="audit_command", required=True, parser_class=type(p))

    v = sub.add_parser("verify", help="recompute the keyed chain; exit 1 naming the first broken row",
                       description="Exit 0 when the chain is intact, 1 naming the first broken row "
                                   "(seq, and whether it was altered, deleted or reordered), a wrong "
                                   "audit key, or a missing/altered audit table.")
    db_arg(v)
    v.add_argument("--json", action="store_true", help="print the result as one JSON object")
    v.add_argument("--anchor", metavar="ANCHOR",
                   help="a head taken earlier by `audit anchor`: its JSON, a file holding it, or "
                        "SEQ:HASH; proves no row up to it was removed")
    v.set_defaults(handler=_verify)

    a = sub.add_parser("anchor", help="print the head of a verified chain, to keep outside the DB",
                       description="Verify the chain, then print its head as JSON "
                                   '{"seq": N, "hash": "...", "at": "..."}. Keep it somewhere the DB\'s '
                                   "writers cannot change; `audit verify --anchor` later proves no row "
                                   "up to it was removed. Exit 1 if the chain is broken.")
    db_arg(a)
    a.add_argument("--json", action="store_true", help="print only the JSON (for scripts)")
    a.set_defaults(handler=_anchor)

    ls = sub.add_parser("list", help="show audit rows, newest first")
    db_arg(ls)
    _filters(ls)
    ls.add_argument("--limit", type=_list_limit, default=50, help="rows to show (default 50; 0 = all)")
    ls.add_argument("--json", action="store_true", help="print a JSON list")
    ls.set_defaults(handler=_list)

    ex = sub.add_parser("export", help="write the (filtered) trail as CSV; audited")
    db_arg(ex)
    _filters(ex)
    ex.add_argument("--out", help="file to write (default: stdout)")
    ex.add_argument("--as", dest="actor", help="name recorded as the actor (default: OS user)")
    ex.set_defaults(handler=_export)


def _list_limit(text: str) -> int:
    return bounded_int(0, 10**9)(text)


def _verify(args, db_path) -> int:
    anchor = None
    if args.anchor:
        try:
            anchor = audit_verify.parse_anchor(args.anchor, allow_file=True)
        except (ValueError, OSError) as exc:
            print(f"error: --anchor: {exc}", file=sys.stderr)
            return 2
    with connect(db_path) as con:
        result = audit_verify.verify(con, expect_head=anchor)
    if args.json:
        print(json.dumps(result.to_json(), indent=2))
    else:
        print(result.summary())
        if result.ok and result.head_seq:
            print(f"anchor for a later check: --anchor {result.head_seq}:{result.head_hash} "
                  "(or keep the JSON of `audit anchor`)")
    return 0 if result.ok else 1


def _anchor(args, db_path) -> int:
    with connect(db_path) as con:
        result = audit_verify.verify(con)
        head = audit_verify.head(con) if result.ok else None
    if not result.ok:
        print(result.summary(), file=sys.stderr)
        print("no anchor printed: an anchor of a broken chain proves nothing", file=sys.stderr)
        return 1
    if head is None:
        print("error: the audit trail is empty; there is no head to anchor yet", file=sys.stderr)
        return 1
    text = json.dumps(head.to_json())
    if args.json:
        print(text)
    else:
        print(text)
        print(f"keep this outside the DB; later: python -m catalog audit verify --anchor '{text}'",
              file=sys.stderr)
    return 0


def _filter_kwargs(args) -> dict:
    return {"user": args.user, "action": args.action, "target": args.target,
            "since": args.since, "until": args.until}


def _list(args, db_path) -> int:
    try:
        with connect(db_path) as con:
            rows = audit_query.query(con, **_filter_kwargs(args), limit=args.limit or None)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(rows.to_json(orient="records", date_format="iso", indent=2))
        return 0
    if rows.empty:
        print("no audit rows match")
        return 0
    for row in rows.itertuples():
        change = " ".join(f"{name}={value}" for name, value in (("before", row.before), ("after", row.after))
                          if isinstance(value, str))
        print(f"{row.seq:>7}  {row.logged_at:%Y-%m-%d %H:%M:%S}  {row.actor:<28} {row.via:<6} "
              f"{row.action:<14} {row.target or '-'}  {change}".rstrip())
    return 0


def _export(args, db_path) -> int:
    user = access.cli_user(args.actor)
    try:
        with connect(db_path) as con:
            data = audit_query.export_csv(con, requested_by=user, **_filter_kwargs(args))
    except (ValueError, access.PermissionDenied) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.out:
        Path(args.out).write_bytes(data)
        rows = data.count(b"\n") - 1  # minus the header line
        print(f"wrote {rows} rows to {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(data.decode("utf-8"))
    return 0
