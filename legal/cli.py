"""`python -m catalog evidence | trace | extract`: the legal subcommands.

catalog/__main__.py (the program entry, which may stand above the library) passes `register`
to catalog.cli.main, so the catalog package itself never imports legal/ or checks/.

Exit codes: 0 done (trace: compliant; extract: k at or above the minimum), 1 found something
(trace: a use without consent; extract: k below the minimum, nothing written), 2 usage error.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from catalog import access
from catalog.access import PermissionDenied
from catalog.store import connect

# The handlers import legal's modules when they run: every `python -m catalog` command builds
# this parser, and plotly, pandas and the checks engine cost seconds to import.
DEFAULT_K_MIN = 5  # legal.extract.ExtractPolicy.k_min (a test keeps them equal)


def register(sub, db_arg) -> None:
    p = sub.add_parser("evidence", help="export an evidence pack (self-contained HTML) for legal",
                       description="One HTML file that opens offline: contract in force with its SHA-256, "
                                   "owners, classification, check results and history, bias audit, consent, "
                                   "SLOs, lineage, the audit-trail excerpt with the chain verification. "
                                   "The export is audited.")
    scope = p.add_mutually_exclusive_group(required=True)
    scope.add_argument("--product", metavar="ID")
    scope.add_argument("--domain", metavar="D")
    scope.add_argument("--all", dest="everything", action="store_true", help="every product")
    p.add_argument("--at", metavar="TIMESTAMP", help="what was in force then (ISO date or time, UTC)")
    p.add_argument("--out", required=True, metavar="FILE", help="the .html file to write")
    p.add_argument("--as", dest="actor", help="name recorded as the actor (default: OS user)")
    db_arg(p)
    p.set_defaults(handler=_evidence)

    p = sub.add_parser("trace", help="trace a user's segment, model, sources and consent at each send",
                       description="Exit 0 when every use had a valid consent, 1 when one did not.")
    p.add_argument("--user", required=True, metavar="KEY", help="user key (u-00042) or its pseudonym (p:...)")
    p.add_argument("--send", metavar="ID", help="only this send (row key of a consent-checked output)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--as", dest="actor", help="name recorded as the actor (default: OS user)")
    db_arg(p)
    p.set_defaults(handler=_trace)

    p = sub.add_parser("extract", help="write an anonymised sandbox extract (Parquet) of a product",
                       description="Identifiers keyed-hashed, personal data dropped or masked, quasi-identifiers "
                                   "generalised, k-anonymity reported; registered in the catalog with lineage "
                                   "to its source. Exit 1 (nothing written) when k is below the minimum.")
    p.add_argument("--product", required=True, metavar="ID")
    p.add_argument("--dataset", metavar="NAME", help="needed when the product has several datasets")
    p.add_argument("--out", required=True, metavar="FILE.parquet")
    p.add_argument("--k-min", type=int, metavar="N", help=f"minimum k (default {DEFAULT_K_MIN})")
    p.add_argument("--json", action="store_true",
                   help='print {"out", "rows", "k", "quasi_identifiers", "dropped", "masked", "hashed", ...}')
    p.add_argument("--as", dest="actor", help="name recorded as the actor (default: OS user)")
    db_arg(p)
    p.set_defaults(handler=_extract)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 2


def _evidence(args, db) -> int:
    from legal import evidence

    out = Path(args.out)
    if out.is_dir():
        return _fail(f"--out {out} is a folder; name the .html file to write")
    try:
        with connect(db) as con:
            pack = evidence.build_pack(con, user=access.cli_user(args.actor), product=args.product,
                                       domain=args.domain, everything=args.everything, at=args.at)
    except (evidence.EvidenceError, PermissionDenied) as exc:
        return _fail(str(exc))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(pack.html, encoding="utf-8")
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc.strerror or exc}")
    print(f"wrote {out} ({len(pack.html.encode()):,} bytes, {len(pack.products)} product(s), {pack.charts} charts, "
          f"as of {pack.at:%Y-%m-%d %H:%M:%S} UTC); sha256 {pack.sha256} recorded in the audit trail")
    return 0


def _trace(args, db) -> int:
    from legal import trace
    from legal.pseudonyms import PseudonymKeyError

    try:
        with connect(db) as con:
            found = trace.trace(con, user_key=args.user, send=args.send, user=access.cli_user(args.actor))
    except (trace.TraceError, PermissionDenied, PseudonymKeyError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(found.to_json(), indent=2, default=str))
    else:
        print(trace.render_text(found))
    return 0 if found.compliant else 1


def _extract(args, db) -> int:
    from legal import extract
    from legal.pseudonyms import PseudonymKeyError

    try:
        with connect(db) as con:
            report = extract.make_extract(con, product_id=args.product, dataset=args.dataset, out=args.out,
                                          k_min=args.k_min, user=access.cli_user(args.actor))
    except (extract.ExtractError, PermissionDenied, PseudonymKeyError) as exc:
        return _fail(str(exc))
    if args.json:
        print(json.dumps(report.to_json(), indent=2, default=str))
    else:
        print(f"{report.status.upper():<7} {report.result.reason}")
        if report.status == "passed":
            print(f"wrote {report.out}: {report.rows:,} rows; hashed {', '.join(report.hashed) or '-'}; "
                  f"dropped {', '.join(report.dropped) or '-'}; masked {', '.join(report.masked) or '-'}; "
                  f"generalised {', '.join(report.generalised) or '-'}; catalog entry {report.extract_product_id}")
    return 0 if report.status == "passed" else 1
