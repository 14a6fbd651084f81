"""`python -m catalog serve-check`: the launcher's safety check, run before `streamlit run`.

It refuses (exit 1, with the fix) to serve demo mode, where anyone can pick any persona,
beyond loopback; it reads the listen address the way Streamlit does and the [auth] section
of the secrets files. It opens no store. Exit codes: 0 safe, 1 refused, 2 a config or
secrets file cannot be read.
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

from catalog import access

DEFAULT_SECRETS = (Path(".streamlit/secrets.toml"), Path("~/.streamlit/secrets.toml"))
DEFAULT_CONFIGS = (Path(".streamlit/config.toml"), Path("~/.streamlit/config.toml"))


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
