"""Whether the app may serve: demo mode (no login, any persona one click away) only on
loopback and only to requests addressed to this machine; anywhere once OIDC login is set.

Read by the app frame (ui.auth) at each start and request, and by `python -m catalog
serve-check` before `streamlit run`, which reads the listen address and the [auth] section
of the secrets files the way Streamlit does. Opens no store. Never imports streamlit.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Iterable
from pathlib import Path

DEFAULT_SECRETS = (Path(".streamlit/secrets.toml"), Path("~/.streamlit/secrets.toml"))
DEFAULT_CONFIGS = (Path(".streamlit/config.toml"), Path("~/.streamlit/config.toml"))

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_loopback(address: str | None) -> bool:
    """True only for an address that accepts local connections alone.

    An empty address makes Streamlit listen on every interface, so it is not loopback.
    """
    if not address or not address.strip():
        return False
    host = address.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname we cannot prove is local


def host_name(host_header: str | None) -> str:
    """The name in an HTTP `Host` header, without its port: `[::1]:8501` → `::1`."""
    host = (host_header or "").strip()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:  # name:port; a bare IPv6 address has several colons
        host = host.partition(":")[0]
    return host.rstrip(".")


def unsafe_host_reason(host_header: str | None) -> str | None:
    """Why a demo-mode request is refused, or None when its `Host` names this machine.

    Binding to loopback is not enough: a page on attacker.example whose name the browser
    resolves to 127.0.0.1 (DNS rebinding) reaches the loopback demo from the victim's own
    browser, with the admin persona one click away. Such a request still says
    `Host: attacker.example`.
    """
    host = host_name(host_header)
    if is_loopback(host):
        return None
    shown = host_header if host_header else "(none)"
    return (f"meshgov's demo mode answers only requests addressed to this machine (localhost, "
            f"127.0.0.1 or ::1), and this one was addressed to {shown}. Open the app as "
            "http://127.0.0.1:PORT, or configure OIDC login to serve it under another name.")


class UnsafeBind(RuntimeError):
    """Demo mode (no login) asked to listen beyond this machine."""


def unsafe_bind_reason(address: str | None, *, auth_configured: bool) -> str | None:
    """Why serving is refused, or None when it is safe: login configured, or loopback only."""
    if auth_configured or is_loopback(address):
        return None
    shown = address if address else "(empty: every interface)"
    return (f"meshgov refuses to serve on {shown} without login: in demo mode anyone who can "
            "reach the app can pick any persona, including admin. Either bind to this machine "
            "only (`streamlit run app.py --server.address 127.0.0.1`, the default in "
            ".streamlit/config.toml), or configure OIDC login: an [auth] section in "
            ".streamlit/secrets.toml (redirect_uri, cookie_secret, client_id, client_secret, "
            "server_metadata_url).")


def ensure_safe_bind(address: str | None, *, auth_configured: bool) -> None:
    """Raise UnsafeBind (with how to fix it) unless `address` is safe to serve on."""
    reason = unsafe_bind_reason(address, auth_configured=auth_configured)
    if reason:
        raise UnsafeBind(reason)


def secrets_have_auth(paths: Iterable[str | Path]) -> bool:
    """Whether any of these secrets.toml files has an [auth] section (for the launcher check)."""
    for path in paths:
        path = Path(path).expanduser()
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{path}: not valid TOML: {exc}") from exc
            if isinstance(data.get("auth"), dict) and data["auth"]:
                return True
    return False


ADDRESS_ENV = "STREAMLIT_SERVER_ADDRESS"


def configured_address(paths=DEFAULT_CONFIGS, environ=None) -> str | None:
    """The server address Streamlit would listen on without a --server.address flag.

    Streamlit reads the flag, else $STREAMLIT_SERVER_ADDRESS (its CLI takes every option from
    `STREAMLIT_<SECTION>_<OPTION>`), else the project's config file, else the user's. None
    means none is set: Streamlit then listens on every interface. A file that is not valid
    TOML, or an address that is not a string, raises ValueError naming the file.
    """
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
