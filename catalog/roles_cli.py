"""`python -m catalog roles`: role bindings (who holds which role) and the permission matrix.

Plugged into catalog.cli by `add_parser`. Every change is audited as the OS user (or
`--as NAME`); see catalog.access.cli_user for why the CLI acts with admin rights.
Exit codes: 0 success, 1 refused (e.g. the last admin binding), 2 usage or engine error.
"""

from __future__ import annotations

import sys

from catalog import access, role_bindings
from catalog.store import connect


def add_parser(subparsers, db_arg) -> None:
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
        frame = role_bindings.list_bindings(con)
    if args.json:
        print(frame.to_json(orient="records", date_format="iso", indent=2))
    elif frame.empty:
        print("no role bindings; everyone who logs in gets the default role "
              f"({role_bindings.default_role() or 'none'})")
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
    change = role_bindings.grant if args.change == "grant" else role_bindings.revoke
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
            added = role_bindings.seed_bindings(con, args.file, user=user)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{added} role binding(s) added from {args.file}")
    return 0
