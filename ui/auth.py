"""Who is using the app: OIDC login when configured, else local demo personas.

- An `[auth]` section in secrets → Streamlit's `st.login` (OIDC). Until the user is logged
  in, only the login screen is shown. Roles come from the role bindings (catalog.access).
- No `[auth]` → local demo mode: a banner, a persona per role in the sidebar, and a refusal
  to serve beyond loopback (anyone reaching a demo app could pick the admin persona) or to a
  request whose `Host` is not this machine's name (DNS rebinding).
  The persona last picked is the demo's persona: a reload, a typed URL or a deep link (a new
  Streamlit session) starts with it, and a `login` row is audited only when it changes.

app.py calls `current_user()` (login screen / banner / persona switcher) and
`render_identity_sidebar(user)`; a page calls `page_user("audit")`, which identifies the same
user without drawing anything and refuses a page the user's roles do not include. Identity
is worked out afresh on every run, so a role granted or revoked applies at the next click.
An OIDC login is audited once per session and identity, naming the claims that gave its roles.
Identity claims are data: shown through ui.text.md, never as markup.
"""

from __future__ import annotations

import os
import threading

import streamlit as st
from streamlit import config as st_config

from catalog import access, audit, role_bindings, serving
from catalog.access import User
from ui.db import conn, db_path
from ui.text import md

PERSONA_KEY = "meshgov_persona"
AUDITED_LOGIN_KEY = "_meshgov_login_audited"
DEFAULT_PERSONA = "viewer"


def auth_configured() -> bool:
    """Whether secrets hold an [auth] section (read at each run: secrets can change)."""
    try:
        section = st.secrets.get("auth")
    except (FileNotFoundError, KeyError, OSError):  # no secrets file at all
        return False
    except Exception:  # noqa: BLE001 - an unparsable secrets file must not look like "no auth"
        st.error("`.streamlit/secrets.toml` could not be read; fix it before the app can start.")
        st.stop()
    return bool(section)


def groups_claim() -> str:
    """Name of the token claim that carries the user's groups (`MESHGOV_GROUPS_CLAIM`)."""
    return os.environ.get("MESHGOV_GROUPS_CLAIM", "groups")


def current_user() -> User:
    """For app.py: run the login (OIDC) or persona (demo) flow, with its banner and persona
    switcher, and return the user — or show the login screen / refusal and st.stop()."""
    return _identify(chrome=True)


def page_user(page: str) -> User:
    """For a page: the same user as app.py's `current_user()` of this run (without drawing the
    banner and switcher again), refused with a clear message — and the page stopped — when
    their roles do not include `page`. A page run on its own (AppTest) gets the same checks."""
    user = _identify(chrome=False)
    try:
        access.require_page(user, page)
    except access.PageDenied as denied:
        show_refusal(denied)
        st.stop()
    return user


def show_refusal(denied: access.PermissionDenied) -> None:
    """The app's own refusal: who is refused what, and which roles may."""
    st.error(md(denied), icon=":material/lock:")


def _identify(*, chrome: bool) -> User:
    user = _oidc_user() if auth_configured() else _demo_user(chrome=chrome)
    _audit_login_once(user)
    return user


def require_or_stop(user: User, action: str, *, target: str | None = None) -> User:
    """`access.require` for a page: a refusal is shown as an error and the page stops."""
    try:
        return access.require(user, action, target=target)
    except access.PermissionDenied as denied:
        show_refusal(denied)
        st.stop()


def _oidc_user() -> User:
    info = st.user
    if not info.get("is_logged_in", False):
        _login_screen()
        st.stop()
    email = info.get("email")
    if not email:
        st.error("Your identity provider did not send an `email` claim, so meshgov cannot look "
                 "up your roles. Ask the IdP admin to add the `email` scope/claim for this app.")
        st.button("Log out", on_click=st.logout, key="meshgov_logout_noemail")
        st.stop()
    raw_groups = info.get(groups_claim()) or []
    groups = [raw_groups] if isinstance(raw_groups, str) else list(raw_groups)
    subject = info.get("sub")
    with conn() as con:
        role_bindings.bootstrap_bindings(con)
        user = role_bindings.resolve_user(con, str(email), groups, name=info.get("name") or None,
                                   email_verified=role_bindings.claim_is_true(info.get("email_verified")),
                                   subject=str(subject) if subject else None, source="oidc")
    if not user.roles:
        st.error(f"You are logged in as {md(user.email)}, but no role is bound to you and unknown "
                 "users get no access here. Ask an admin to grant you a role.")
        st.button("Log out", on_click=st.logout, key="meshgov_logout_norole")
        st.stop()
    return user


def _login_screen() -> None:
    st.title(":material/hub: meshgov")
    st.markdown("The governance console of the data mesh. Log in with your organisation's "
                "account to continue; your roles decide which pages and actions you get.")
    if st.button("Log in", type="primary", key="meshgov_login"):
        st.login()


class _DemoPersona:
    """The persona of one demo store, shared by every session of this process: the one
    picked last. Demo mode serves only this machine, where anyone may pick any persona
    anyway; OIDC mode never reads it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.persona = DEFAULT_PERSONA
        self.audited: str | None = None


@st.cache_resource(show_spinner=False)
def _demo_persona(db: str) -> _DemoPersona:
    return _DemoPersona()


def _refuse_foreign_host() -> None:
    """Demo mode: stop unless the request's `Host` names this machine (DNS rebinding).

    No headers at all means no browser connection (AppTest drives the script directly);
    every HTTP/1.1 request a browser sends carries `Host`."""
    headers = st.context.headers
    if not headers:
        return
    reason = serving.unsafe_host_reason(headers.get("host"))
    if reason:
        st.error(md(reason), icon=":material/block:")
        st.stop()


def _demo_user(*, chrome: bool) -> User:
    # streamlit.config.get_option is st.get_option looked up at call time (tests patch it).
    reason = serving.unsafe_bind_reason(st_config.get_option("server.address"), auth_configured=False)
    if reason:
        st.error(reason, icon=":material/block:")
        st.stop()
    _refuse_foreign_host()
    shared = _demo_persona(db_path())
    if st.session_state.get(PERSONA_KEY) not in access.ROLES:
        st.session_state[PERSONA_KEY] = shared.persona  # a new session keeps the demo's persona
    shared.persona = st.session_state[PERSONA_KEY]
    if chrome:
        st.warning("**Local demo mode** — no login is configured, so you pick a persona in the "
                   "sidebar. This app only answers on this machine.", icon=":material/science:")
        with st.sidebar:
            st.selectbox("Demo persona", access.ROLES, key=PERSONA_KEY,
                         format_func=lambda r: f"{r.replace('_', ' ')} — {access.ROLE_DESCRIPTIONS[r]}",
                         help="Demo mode only: with OIDC configured, roles come from role bindings.")
    return access.demo_user(st.session_state[PERSONA_KEY])


def _audit_login_once(user: User) -> None:
    """OIDC: one `login` row per session and identity, naming the claims that matched.
    Demo: one row per persona change, whichever session or page load made it."""
    if user.source == "demo":
        shared = _demo_persona(db_path())
        with shared.lock:
            if shared.audited == user.email:
                return
            with conn() as con:
                audit.record(con, actor=user, action="login", target=None,
                             after={"roles": list(user.roles), "groups": []})
            shared.audited = user.email
        return
    identity = (user.email, user.source)
    if st.session_state.get(AUDITED_LOGIN_KEY) == identity:
        return
    with conn() as con:
        audit.record(con, actor=user, action="login", target=None,
                     after={"roles": list(user.roles), "groups": list(user.groups),
                            "matched": list(user.matched)})
    st.session_state[AUDITED_LOGIN_KEY] = identity


def render_identity_sidebar(user: User) -> None:
    """Who is logged in, with which roles, and a logout button (OIDC)."""
    with st.sidebar:
        st.markdown(f"**{md(user.name)}**  \n{md(user.email)}")
        st.caption("Roles: " + (", ".join(r.replace("_", " ") for r in user.roles) or "none")
                   + f" · via {user.source}")
        if user.source == "oidc" and st.button("Log out", key="meshgov_logout"):
            with conn() as con:
                audit.record(con, actor=user, action="logout", target=None)
            st.session_state.pop(AUDITED_LOGIN_KEY, None)
            st.logout()
