"""Who is using the app: OIDC login when configured, else local demo personas.

- An `[auth]` section in secrets → Streamlit's `st.login` (OIDC). Until the user is logged
  in, only the login screen is shown. Roles come from the role bindings (catalog.access).
- No `[auth]` → local demo mode: a banner, a persona per role in the sidebar, and a refusal
  to serve beyond loopback (anyone reaching a demo app could pick the admin persona).

app.py calls `current_user()` (login screen / banner / persona switcher) and
`render_identity_sidebar(user)`; a page calls `page_user("audit")`, which identifies the same
user without drawing anything and refuses a page the user's roles do not include. Identity
is worked out afresh on every run, so a role granted or revoked applies at the next click.
A login is audited once per session and identity.
"""

from __future__ import annotations

import os

import streamlit as st
from streamlit import config as st_config

from catalog import access, audit
from catalog.access import User
from ui.db import conn

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
        st.error(f"🔒 {denied}")
        st.stop()
    return user


def _identify(*, chrome: bool) -> User:
    user = _oidc_user() if auth_configured() else _demo_user(chrome=chrome)
    _audit_login_once(user)
    return user


def require_or_stop(user: User, action: str, *, target: str | None = None) -> User:
    """`access.require` for a page: a refusal is shown as an error and the page stops."""
    try:
        return access.require(user, action, target=target)
    except access.PermissionDenied as denied:
        st.error(f"🔒 {denied}")
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
    with conn() as con:
        access.bootstrap_bindings(con)
        user = access.resolve_user(con, str(email), groups, name=info.get("name") or None,
                                   source="oidc")
    if not user.roles:
        st.error(f"You are logged in as {user.email}, but no role is bound to you and unknown "
                 "users get no access here. Ask an admin to grant you a role.")
        st.button("Log out", on_click=st.logout, key="meshgov_logout_norole")
        st.stop()
    return user


def _login_screen() -> None:
    st.title("🕸️ meshgov")
    st.markdown("The governance console of the data mesh. Log in with your organisation's "
                "account to continue; your roles decide which pages and actions you get.")
    if st.button("Log in", type="primary", key="meshgov_login"):
        st.login()


def _demo_user(*, chrome: bool) -> User:
    # streamlit.config.get_option is st.get_option looked up at call time (tests patch it).
    reason = access.unsafe_bind_reason(st_config.get_option("server.address"), auth_configured=False)
    if reason:
        st.error(f"🚫 {reason}")
        st.stop()
    if st.session_state.get(PERSONA_KEY) not in access.ROLES:
        st.session_state[PERSONA_KEY] = DEFAULT_PERSONA
    if chrome:
        st.warning("**Local demo mode** — no login is configured, so you pick a persona in the "
                   "sidebar. This app only answers on this machine.", icon="🧪")
        with st.sidebar:
            st.selectbox("Demo persona", access.ROLES, key=PERSONA_KEY,
                         format_func=lambda r: f"{r.replace('_', ' ')} — {access.ROLE_DESCRIPTIONS[r]}",
                         help="Demo mode only: with OIDC configured, roles come from role bindings.")
    return access.demo_user(st.session_state[PERSONA_KEY])


def _audit_login_once(user: User) -> None:
    """One `login` row per session and identity (a demo persona switch counts as one)."""
    identity = (user.email, user.source)
    if st.session_state.get(AUDITED_LOGIN_KEY) == identity:
        return
    with conn() as con:
        audit.record(con, actor=user, action="login", target=None,
                     after={"roles": list(user.roles), "groups": list(user.groups)})
    st.session_state[AUDITED_LOGIN_KEY] = identity


def render_identity_sidebar(user: User) -> None:
    """Who is logged in, with which roles, and a logout button (OIDC)."""
    with st.sidebar:
        st.markdown(f"**{user.name}**  \n{user.email}")
        st.caption("Roles: " + (", ".join(r.replace("_", " ") for r in user.roles) or "none")
                   + f" · via {user.source}")
        if user.source == "oidc" and st.button("Log out", key="meshgov_logout"):
            with conn() as con:
                audit.record(con, actor=user, action="logout", target=None)
            st.session_state.pop(AUDITED_LOGIN_KEY, None)
            st.logout()
