"""AppTest: login (OIDC via `at.user`), demo personas, the loopback refusal, and each role on
the Audit and Admin pages (visible or refused), with their actions.

Messages are Markdown with every user-controlled string escaped (ui.text.md); `shown()` gives
the text a reader sees."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.util import patch_config_options

from catalog import access, audit, audit_query, role_bindings
from catalog.store import connect
from ui.auth import PERSONA_KEY

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "auth"
PAGES = {"audit": "views/audit_page.py", "admin": "views/admin_page.py"}
AUTH_SECRETS = {"auth": {"redirect_uri": "http://127.0.0.1:8501/oauth2callback",
                         "cookie_secret": "test-secret", "client_id": "meshgov",
                         "client_secret": "x",
                         "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration"}}


@pytest.fixture
def db(tmp_path, monkeypatch):
    path = tmp_path / "app.duckdb"
    monkeypatch.setenv("MESHGOV_DB", str(path))
    monkeypatch.delenv("MESHGOV_ROLES_FILE", raising=False)
    monkeypatch.delenv("MESHGOV_DEFAULT_ROLE", raising=False)
    with connect(path):
        pass  # migrated before the app's first connection
    return path


def run(at: AppTest, *, address: str = "127.0.0.1") -> AppTest:
    with patch_config_options({"server.address": address}):
        at.run()
    assert not at.exception, f"the script raised: {[e.value for e in at.exception]}"
    return at


def page_app(page: str, *, persona: str | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / PAGES[page]), default_timeout=30)
    if persona:
        at.session_state[PERSONA_KEY] = persona
    return at


def oidc_app(page: str, claims: dict) -> AppTest:
    at = AppTest.from_file(str(ROOT / PAGES[page]), default_timeout=30)
    at.secrets = AUTH_SECRETS
    at.user = claims
    return at


def shown(markdown: str) -> str:
    """The text CommonMark shows for Markdown whose punctuation is backslash-escaped."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


def errors(at: AppTest) -> str:
    return " | ".join(shown(e.value) for e in at.error)


# --- each role on each page -----------------------------------------------------------------------

@pytest.mark.parametrize("role", access.ROLES)
@pytest.mark.parametrize("page", sorted(PAGES))
def test_each_role_sees_or_is_refused_each_page(db, page, role):
    at = run(page_app(page, persona=role))
    visible = page in access.PAGE_ACCESS[role]
    if visible:
        assert at.title and not at.error, f"{role} should see {page}: {errors(at)}"
    else:
        assert f"may not open the {page} page" in errors(at), f"{role} must be refused {page}"
        assert not at.title and not at.dataframe, f"nothing of {page} may render for {role}"


@pytest.mark.parametrize("role", ["legal", "admin"])
def test_export_button_only_for_export_evidence_and_rendering_does_not_export(db, role):
    at = run(page_app("audit", persona=role))
    buttons = [b for b in at.get("download_button") if b.key == "audit_export"]
    assert buttons, f"{role} holds export_evidence: the export button must be there"
    with connect(db) as con:
        assert audit_query.query(con, action="export").empty, "the export is audited on click, not on render"


def test_audit_page_says_whether_the_trail_is_intact(db):
    with connect(db) as con:
        for i in range(5):
            audit.record(con, actor=access.demo_user("steward"), action="check_run", target=f"product:p{i}")
    at = run(page_app("audit", persona="legal"))
    assert "The trail is intact" in at.success[0].value, [s.value for s in at.success]
    with connect(db) as con:
        con.execute("UPDATE audit_log SET target = 'product:other' WHERE seq = 3")
    at = run(page_app("audit", persona="legal"))
    assert "broken at seq 3" in errors(at) and "altered" in errors(at), errors(at)


def test_audit_page_filters_by_user_action_and_product(db):
    with connect(db) as con:
        for i in range(4):
            audit.record(con, actor=access.demo_user("steward"), action="check_run", target=f"product:p{i % 2}")
        audit.record(con, actor=access.demo_user("admin"), action="role_change", target="email:x@example.com")
    at = run(page_app("audit", persona="legal"))
    table = at.dataframe[0].value
    assert len(table) == 6, f"4 check runs + 1 role change + legal's own login: {table.action.tolist()}"
    at.selectbox(key="audit_user").select(access.demo_user("steward").email)
    at.text_input(key="audit_target").input("p1")
    run(at)
    assert at.dataframe[0].value.target.tolist() == ["product:p1", "product:p1"]
    at.selectbox(key="audit_user").select("(anyone)")
    at.text_input(key="audit_target").input("")
    at.multiselect(key="audit_action").select("role_change")
    run(at)
    assert at.dataframe[0].value.action.tolist() == ["role_change"]


def test_admin_grants_and_revokes_through_the_page_and_both_are_audited(db):
    at = run(page_app("admin", persona="admin"))
    at.selectbox(key="grant_kind").select("group")
    at.text_input(key="grant_subject").input("legal-team")
    at.selectbox(key="grant_role").select("legal")
    at.button(key="grant_submit").click()
    run(at)
    assert "Granted legal to group legal-team" in shown(at.success[0].value), [s.value for s in at.success]
    with connect(db) as con:
        assert role_bindings.resolve_user(con, "new@example.com", ["legal-team"], email_verified=True).roles == ("legal",)
    at.selectbox(key="revoke_pick").select(0)
    run(at)  # the Revoke button is enabled once a binding is picked
    at.button(key="revoke_submit").click()
    run(at)
    with connect(db) as con:
        assert role_bindings.list_bindings(con).empty, "the revoke button must remove the binding"
        changes = audit_query.query(con, action="role_change", newest_first=False)
    assert changes.after.tolist() == ['{"roles":["legal"]}', '{"roles":[]}'], changes.after.tolist()


def test_admin_page_shows_the_permission_matrix(db):
    at = run(page_app("admin", persona="admin"))
    frames = [df.value for df in at.dataframe]
    # roles are the columns (it fits at 1440 px); pages and actions are the rows
    matrix = next(f for f in frames if list(f.columns) == list(access.ROLES))
    rows = {str(i): r for i, r in matrix.iterrows()}
    action_row = next(v for k, v in rows.items() if "manage_roles" in k)
    assert action_row["admin"] and not action_row["viewer"], "the matrix table is the data"


# --- demo mode ------------------------------------------------------------------------------------

def frame_app(*, persona: str | None = None) -> AppTest:
    """The real frame, app.py: identity first, then navigation by role."""
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    if persona:
        at.session_state[PERSONA_KEY] = persona
    return at


def open_url(at: AppTest, url_path: str) -> AppTest:
    """What typing /<url_path> does. AppTest.switch_page only finds file pages, and app.py
    registers a refused page as a function, so look its page hash up by its URL path."""
    page_hash = next((h for h, info in at._registered_pages.items()
                      if info.get("url_pathname") == url_path), None)
    assert page_hash, f"/{url_path} must be a registered page: {at._registered_pages}"
    at._page_hash = page_hash
    return run(at)


def test_demo_mode_shows_a_banner_and_audits_each_persona_once(db):
    at = run(frame_app(persona="legal"))
    assert any("Local demo mode" in w.value for w in at.warning), "demo mode must say so"
    assert at.sidebar.selectbox(key=PERSONA_KEY).value == "legal"
    run(at)
    at.sidebar.selectbox(key=PERSONA_KEY).select("admin")
    run(at)
    with connect(db) as con:
        logins = audit_query.query(con, action="login", newest_first=False)
    assert logins.actor.tolist() == ["legal@demo.meshgov.local", "admin@demo.meshgov.local"], \
        f"one login row per persona change: {logins.actor.tolist()}"
    assert set(logins.via) == {"demo"}


def test_demo_persona_survives_new_sessions_and_is_audited_once_per_change(db):
    first = run(frame_app())
    assert first.sidebar.selectbox(key=PERSONA_KEY).value == "viewer", "the first visit is a viewer"
    first.sidebar.selectbox(key=PERSONA_KEY).select("steward")
    run(first)
    for _ in range(3):  # a reload, a typed URL, a deep link: each a new session
        again = run(frame_app())
        assert again.sidebar.selectbox(key=PERSONA_KEY).value == "steward", \
            "a new page load keeps the persona picked last"
    switcher = run(frame_app())
    switcher.sidebar.selectbox(key=PERSONA_KEY).select("legal")
    run(switcher)
    run(frame_app())
    with connect(db) as con:
        logins = audit_query.query(con, action="login", newest_first=False)
    assert logins.actor.tolist() == ["viewer@demo.meshgov.local", "steward@demo.meshgov.local",
                                     "legal@demo.meshgov.local"], \
        f"one login row per persona change, not per page load: {logins.actor.tolist()}"


def test_demo_persona_is_never_read_with_login_configured(db):
    demo = run(frame_app())
    demo.sidebar.selectbox(key=PERSONA_KEY).select("admin")
    run(demo)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.secrets = AUTH_SECRETS
    at.user = {"is_logged_in": True, "email": "stranger@example.com", "email_verified": True}
    run(at)
    assert "Roles: viewer · via oidc" in [c.value for c in at.sidebar.caption], \
        "OIDC users get their own roles, never the demo's persona"
    assert not at.sidebar.selectbox, "no persona switcher with login configured"


@pytest.mark.parametrize("role", access.ROLES)
def test_the_frame_offers_only_the_pages_a_role_may_see(db, role):
    at = run(frame_app(persona=role))
    for page, path in PAGES.items():
        allowed = page in access.PAGE_ACCESS[role]
        if allowed:
            run(at.switch_page(str(ROOT / path)))
            assert at.title and not at.error, f"{role} should reach {page} through the navigation"
    assert [b.value for b in at.sidebar.markdown if "demo\\.meshgov\\.local" in b.value], \
        "the sidebar names who is signed in"


@pytest.mark.parametrize("role", [r for r in access.ROLES if "admin" not in access.PAGE_ACCESS[r]])
def test_a_typed_url_of_a_refused_page_shows_only_the_refusal_naming_the_roles(db, role):
    at = run(frame_app(persona=role))
    for page in ("admin", "audit"):
        if page in access.PAGE_ACCESS[role]:
            continue
        open_url(at, page)
        allowed = ", ".join(r for r in access.ROLES if page in access.PAGE_ACCESS[r])
        assert f"may not open the {page} page: it needs one of the roles {allowed}" in errors(at), \
            f"{role} typing /{page} must read why: {errors(at)}"
        assert not at.title and not at.dataframe and not at.text_input and not at.button, \
            f"nothing of {page} may render for {role}"


def test_switching_persona_away_from_a_page_drops_it(db):
    at = run(frame_app(persona="legal"))
    run(at.switch_page(str(ROOT / PAGES["audit"])))
    assert at.title[0].value.endswith("Audit trail")
    at.sidebar.selectbox(key=PERSONA_KEY).select("viewer")
    run(at)
    assert "may not open the audit page" in errors(at) and not at.dataframe and not at.title, \
        "a viewer left on the audit page reads the refusal, and no row of the trail"


def test_demo_mode_defaults_to_the_least_privileged_persona(db):
    at = run(page_app("audit"))
    assert "may not open the audit page" in errors(at), "the default persona is viewer"


@pytest.mark.parametrize("address", ["0.0.0.0", "", "192.168.1.20", "::"])
def test_demo_mode_refuses_to_serve_beyond_loopback(db, address):
    at = run(page_app("audit", persona="admin"), address=address)
    assert "refuses to serve" in errors(at), f"no refusal on {address!r}: {errors(at)}"
    assert "--server.address 127.0.0.1" in errors(at) and "[auth]" in errors(at), "say how to fix it"
    assert not at.title and not at.dataframe and not at.sidebar.selectbox, "nothing else may render"


# --- OIDC mode (at.user stands in for the identity token) -------------------------------------------

def test_oidc_login_screen_until_logged_in(db):
    at = run(oidc_app("audit", {"is_logged_in": False}), address="0.0.0.0")
    assert at.button(key="meshgov_login").label == "Log in", "the login screen offers st.login"
    assert not at.dataframe and not at.error, "nothing but the login screen before login"
    assert not at.sidebar.selectbox, "no persona switcher when login is configured"
    with connect(db) as con:
        assert audit_query.query(con).empty, "no login happened yet"


def test_oidc_roles_come_from_bindings_by_email_or_group(db):
    with connect(db) as con:
        role_bindings.seed_bindings(con, FIXTURES / "roles.toml", user=access.demo_user("admin"))
    at = run(oidc_app("audit", {"is_logged_in": True, "email": "Lou.Legal@example.com", "name": "Lou",
                                "email_verified": True}))
    assert at.title and not at.error, f"legal by email should see the audit page: {errors(at)}"
    at = run(oidc_app("audit", {"is_logged_in": True, "email": "new@example.com", "groups": ["legal-team"],
                                "email_verified": True}))
    assert at.title and not at.error, f"legal by group claim should see the audit page: {errors(at)}"
    at = run(oidc_app("audit", {"is_logged_in": True, "email": "stranger@example.com", "email_verified": True}))
    assert "stranger@example.com (viewer) may not open the audit page" in errors(at), errors(at)
    at = run(oidc_app("admin", {"is_logged_in": True, "email": "ada.admin@example.com",
                                "email_verified": True}))
    assert at.title and not at.error, errors(at)


def test_oidc_login_is_audited_once_per_session(db):
    with connect(db) as con:
        role_bindings.seed_bindings(con, FIXTURES / "roles.toml", user=access.demo_user("admin"))
    at = oidc_app("audit", {"is_logged_in": True, "email": "lou.legal@example.com", "groups": ["legal-team"],
                            "email_verified": True})
    for _ in range(3):
        run(at)
    with connect(db) as con:
        logins = audit_query.query(con, action="login")
    assert len(logins) == 1, f"three reruns, one session: one login row, got {len(logins)}"
    assert (logins.actor.iloc[0], logins.via.iloc[0]) == ("lou.legal@example.com", "oidc")
    assert '"groups":["legal-team"]' in logins.after.iloc[0], "the login records the groups it was granted by"
    assert '"matched":["email","group:legal-team"]' in logins.after.iloc[0], \
        f"the login says which claims gave its roles: {logins.after.iloc[0]}"


def test_oidc_unverified_email_of_the_admin_gets_no_admin_role(db):
    with connect(db) as con:
        role_bindings.seed_bindings(con, FIXTURES / "roles.toml", user=access.demo_user("admin"))
    claims = {"is_logged_in": True, "sub": "mallory", "email": "Ada.Admin@Example.com ",
              "email_verified": False, "name": "Ada Admin"}
    at = run(oidc_app("admin", claims))
    assert "may not open the admin page" in errors(at) and not at.title, \
        f"an unverified copy of the admin's address must not open Admin: {errors(at)}"
    at = run(oidc_app("admin", {**claims, "email": "ada.admin@example.com"}))
    assert "may not open the admin page" in errors(at), "not even the exact address, unverified"
    with connect(db) as con:
        logins = audit_query.query(con, action="login", newest_first=False)
    assert all('"roles":["viewer"]' in a and '"matched":["default"]' in a for a in logins.after), \
        f"the audit says the default role applied, no binding matched: {logins.after.tolist()}"


def test_oidc_name_claim_is_shown_as_text(db):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=30)
    at.secrets = AUTH_SECRETS
    at.user = {"is_logged_in": True, "email": "x@example.com", "email_verified": True,
               "name": "![x](https://evil.example/p.png) <img src=x onerror=alert(1)>"}
    run(at)
    who = next(m.value for m in at.sidebar.markdown if "evil" in m.value)
    assert not re.search(r"(?<!\\)[!\[\]()<>]", who.replace("**", "")), \
        f"every bracket of the name claim must be escaped Markdown: {who!r}"
    assert "![x](https://evil.example/p.png) <img src=x onerror=alert(1)>" in shown(who), \
        "and still read as the name it is"


def test_oidc_without_email_claim_or_role_is_refused(db, monkeypatch):
    at = run(oidc_app("audit", {"is_logged_in": True, "sub": "abc"}))
    assert "did not send an `email` claim" in errors(at), errors(at)
    monkeypatch.setenv("MESHGOV_DEFAULT_ROLE", "none")
    at = run(oidc_app("audit", {"is_logged_in": True, "email": "stranger@example.com"}))
    assert "no role is bound to you" in errors(at), errors(at)


def test_oidc_first_start_seeds_role_bindings_from_the_config_file(db, monkeypatch):
    monkeypatch.setenv("MESHGOV_ROLES_FILE", str(FIXTURES / "roles.toml"))
    at = run(oidc_app("admin", {"is_logged_in": True, "email": "ada.admin@example.com",
                                "email_verified": True}))
    assert at.title and not at.error, f"the seeded admin must get in: {errors(at)}"


