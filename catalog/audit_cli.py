"""`python -m catalog audit|roles|serve-check`: the audit trail, role bindings, and the
launcher's safety check, from the command line.

Plugged into catalog.cli by `add_parser`. Every change made here is audited as the OS user
(or `--as NAME`); see catalog.access.cli_user for why the CLI acts with admin rights.
Exit codes: 0 success / intact / safe, 1 broken chain / refused, 2 usage or engine error.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

from catalog import access, audit
from catalog.cli_args import bounded_int
from catalog.store import connect


def add_parser(subparsers, db_arg) -> None:
    _add_audit(subparsers, db_arg)
    _add_roles(subparsers, db_arg)
    _add_serve_check(subparsers)


# --- audit ------------------------------------------------------------------------------------

def _filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--user", help="actor contains this text (case-insensitive)")
    parser.add_argument("--action", action="append", help="exact action; repeat for several")
    parser.add_argument("--target", help="target contains this text, e.g. a product id")
    parser.add_argument("--since", help="from this UTC date or ISO time (inclusive)")
    parser.add_argument("--until", help="up to this UTC date or ISO time (inclusive)")


def _add_audit(subparsers, db_arg) -> None:
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
            anchor = audit.parse_anchor(args.anchor, allow_file=True)
        except (ValueError, OSError) as exc:
            print(f"error: --anchor: {exc}", file=sys.stderr)
            return 2
    with connect(db_path) as con:
        result = audit.verify(con, expect_head=anchor)
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
        result = audit.verify(con)
        head = audit.head(con) if result.ok else None
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
            rows = audit.query(con, **_filter_kwargs(args), limit=args.limit or None)
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
            data = audit.export_csv(con, requested_by=user, **_filter_kwargs(args))
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


# --- roles ------------------------------------------------------------------------------------

def _add_roles(subparsers, db_arg) -> None:
    p = subparsers.add_parser("roles", help="role bindings (who holds which role) and the matrix")
    sub = p.add_subparsers(dest="roles_command", required=True, parser_class=type(p))

    ls = sub.add_parser("list", help="show role bindings")
    db_arg(ls)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_roles_list)

    m = sub.add_parser("matrix", help="show which role sees which page and may take which action")
    m.set_defaults(handler=_roles_matrix, db=None)  # catalog.cli resolves args.db for all

    for name, helptext in (("grant", "bind a role to an email or group; audited"),
                           ("revoke", "remove a role binding; audited")):
        g = sub.add_parser(name, help=helptext)
        who = g.add_mutually_exclusive_group(required=True)
        who.add_argument("--email")
        who.add_argument("--group")
        g.add_argument("role", choices=access.ROLES)
        db_arg(g)
        g.add_argument("--as", dest="actor", help="name recorded as the actor (default: OS user)")
        g.set_defaults(handler=_roles_change, change=name)

    s = sub.add_parser("seed", help="add the bindings of a TOML file (see config/roles.example.toml)")
    s.add_argument("file")
    db_arg(s)
    s.add_argument("--as", dest="actor", help="name recorded as the actor (default: OS user)")
    s.set_defaults(handler=_roles_seed)


def _roles_list(args, db_path) -> int:
    with connect(db_path) as con:
        frame = access.list_bindings(con)
    if args.json:
        print(frame.to_json(orient="records", date_format="iso", indent=2))
    elif frame.empty:
        print("no role bindings; everyone who logs in gets the default role "
              f"({access.default_role() or 'none'})")
    else:
        for row in frame.itertuples():
            print(f"{row.subject_kind:<6} {row.subject:<36} {row.role:<15} by {row.granted_by}")
    return 0


def _roles_matrix(args, db_path) -> int:
    frame = access.permission_matrix().drop(columns=["description"])
    print(frame.replace({True: "x", False: "."}).to_string(index=False))
    return 0


def _roles_change(args, db_path) -> int:
    user = access.cli_user(args.actor)
    kind, subject = ("email", args.email) if args.email else ("group", args.group)
    change = access.grant if args.change == "grant" else access.revoke
    try:
        with connect(db_path) as con:
            changed = change(con, user=user, kind=kind, subject=subject, role=args.role)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    verb = "granted" if args.change == "grant" else "revoked"
    print(f"{verb} {args.role} {'to' if verb == 'granted' else 'from'} {kind} {subject}"
          if changed else f"nothing to do: {kind} {subject} "
          f"{'already holds' if verb == 'granted' else 'does not hold'} {args.role}")
    return 0


def _roles_seed(args, db_path) -> int:
    user = access.cli_user(args.actor)
    try:
        with connect(db_path) as con:
            added = access.seed_bindings(con, args.file, user=user)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{added} role binding(s) added from {args.file}")
    return 0


# --- serve-check ------------------------------------------------------------------------------

DEFAULT_SECRETS = (Path(".streamlit/secrets.toml"), Path("~/.streamlit/secrets.toml"))
DEFAULT_CONFIGS = (Path(".streamlit/config.toml"), Path("~/.streamlit/config.toml"))


def _add_serve_check(subparsers) -> None:
    p = subparsers.add_parser(
        "serve-check", help="refuse (exit 1) to serve demo mode beyond loopback",
        description="Run before `streamlit run app.py`: exit 0 when the address is loopback or "
                    "OIDC login is configured ([auth] in secrets), 1 with how to fix it otherwise, "
                    "2 when a config or secrets file cannot be read.")
    p.add_argument("--address", help="the --server.address you will pass to streamlit (default: "
                                     "what streamlit would read: $STREAMLIT_SERVER_ADDRESS, then "
                                     "[server] address of .streamlit/config.toml, then "
                                     "~/.streamlit/config.toml)")
    p.add_argument("--secrets", action="append", metavar="FILE",
                   help="secrets file(s) streamlit will read (default: .streamlit/secrets.toml "
                        "and ~/.streamlit/secrets.toml)")
    p.set_defaults(handler=_serve_check, db=None)


ADDRESS_ENV = "STREAMLIT_SERVER_ADDRESS"


def configured_address(paths=DEFAULT_CONFIGS, environ=None) -> str | None:
    """The server address Streamlit would listen on without a --server.address flag.

    Streamlit reads the flag, else $STREAMLIT_SERVER_ADDRESS (its CLI takes every option from
    `STREAMLIT_<SECTION>_<OPTION>`), else the project's config file, else the user's. None
    means none is set: Streamlit then listens on every interface. A file that is not valid
    TOML, or an address that is not a string, raises ValueError naming the file.
    """
    import os

    environ = os.environ if environ is None else environ
    if ADDRESS_ENV in environ:
        return environ[ADDRESS_ENV]
    for path in paths:
        path = Path(path).expanduser().absolute()
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"{path}: not valid TOML ({exc}); streamlit cannot read it either") from exc
        server = data.get("server", {})
        if not isinstance(server, dict):
            raise ValueError(f"{path}: [server] must be a table, not {type(server).__name__}")
        if "address" in server:
            if not isinstance(server["address"], str):
                raise ValueError(f"{path}: [server] address must be a string, not {server['address']!r}")
            value = server["address"]
            if value.startswith("env:") and value[4:] in environ:  # streamlit's indirection
                return environ[value[4:]]
            return value
    return None


def _serve_check(args, db_path) -> int:
    try:
        address = args.address if args.address is not None else configured_address()
        has_auth = access.secrets_have_auth(args.secrets or DEFAULT_SECRETS)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reason = access.unsafe_bind_reason(address, auth_configured=has_auth)
    if reason:
        print(reason, file=sys.stderr)
        return 1
    mode = "OIDC login configured" if has_auth else f"demo mode on loopback {address}"
    print(f"ok: {mode}")
    return 0
