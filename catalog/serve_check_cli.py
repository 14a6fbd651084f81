"""`python -m catalog serve-check`: the launcher's safety check, run before `streamlit run`.

It refuses (exit 1, with the fix) to serve demo mode, where anyone can pick any persona,
beyond loopback; it reads the listen address the way Streamlit does and the [auth] section
of the secrets files. It opens no store. Exit codes: 0 safe, 1 refused, 2 a config or
secrets file cannot be read.
"""

from __future__ import annotations

import sys

from catalog import serving


def add_parser(subparsers) -> None:
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


def _serve_check(args, db_path) -> int:
    try:
        address = args.address if args.address is not None else serving.configured_address()
        has_auth = serving.secrets_have_auth(args.secrets or serving.DEFAULT_SECRETS)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    reason = serving.unsafe_bind_reason(address, auth_configured=has_auth)
    if reason:
        print(reason, file=sys.stderr)
        return 1
    mode = "OIDC login configured" if has_auth else f"demo mode on loopback {address}"
    print(f"ok: {mode}")
    return 0
