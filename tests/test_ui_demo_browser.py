"""Browser: the local demo in headless Chromium (issue 8, items 5 and 7).

- DNS rebinding: Chromium resolving attacker.example to 127.0.0.1 reaches the loopback demo,
  and must get only the refusal, never the app or a persona switcher.
- A viewer typing /admin reads the app's refusal naming the roles that may open it, not
  Streamlit's "Page not found".
- The persona picked survives a reload and a typed URL, and each persona change is one
  `login` row in the audit trail, not one per page load.
"""

from __future__ import annotations

import re

import pytest

from catalog import audit_query
from catalog.store import connect
from tests.browser_support import ARTIFACTS, chromium_page, require_chromium, streamlit_server

REBOUND = "attacker.example"


@pytest.fixture
def demo_server(tmp_path):
    db = tmp_path / "demo.duckdb"
    with connect(db):
        pass
    secrets = tmp_path / "no-auth.toml"
    secrets.write_text("# no [auth]: demo mode\n")
    with streamlit_server(env={"MESHGOV_DB": str(db)}, extra_args=["--secrets.files", str(secrets)]) as url:
        yield url, db


def _identity(page) -> str:
    caption = page.get_by_text(re.compile(r"^Roles: .* · via demo$")).first
    caption.wait_for(timeout=60_000)
    return caption.inner_text()


@pytest.mark.browser
def test_rebound_name_gets_only_the_refusal(demo_server):
    require_chromium()
    url, db = demo_server
    port = url.rsplit(":", 1)[1]
    with chromium_page([f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1"]) as page:
        page.goto(f"http://{REBOUND}:{port}/admin")
        page.get_by_text("answers only requests addressed to this machine", exact=False).wait_for(timeout=60_000)
        text = page.locator("body").inner_text()
        page.screenshot(path=str(ARTIFACTS / "demo-rebinding-refusal.png"))
        assert page.get_by_text("Demo persona").count() == 0, "no persona switcher for a foreign Host"
        assert page.get_by_role("link", name="Overview").count() == 0, "no navigation for a foreign Host"
        assert f"{REBOUND}:{port}" in text.replace("\u2060", ""), "the refusal names the Host it saw"
        page.goto(f"http://127.0.0.1:{port}/")
        assert "viewer" in _identity(page), "the same server answers its loopback name"
    with connect(db) as con:
        logins = audit_query.query(con, action="login")
    assert logins.actor.tolist() == ["viewer@demo.meshgov.local"], \
        f"the refused request must not have logged anyone in: {logins.actor.tolist()}"


@pytest.mark.browser
def test_viewer_typing_admin_reads_the_refusal_and_the_persona_survives_page_loads(demo_server):
    require_chromium()
    url, db = demo_server
    with chromium_page() as page:
        page.goto(url + "/admin")
        refusal = page.get_by_text("may not open the admin page", exact=False).first
        refusal.wait_for(timeout=60_000)
        text = refusal.inner_text()
        page.screenshot(path=str(ARTIFACTS / "admin-refusal-viewer.png"))
        assert "it needs one of the roles admin" in text, f"the refusal names who may open it: {text}"
        assert page.get_by_text("Page not found", exact=False).count() == 0, "not Streamlit's page-not-found"
        assert page.get_by_text("Role bindings").count() == 0, "nothing of the Admin page renders"
        assert page.get_by_role("link", name="Admin").count() == 0, "the menu does not offer Admin"

        page.goto(url + "/")
        assert "viewer" in _identity(page)
        page.locator('[data-testid="stSidebar"] [data-testid="stSelectbox"]').first.click()
        page.get_by_role("option", name=re.compile(r"^steward")).click()
        page.get_by_text("Roles: steward · via demo").wait_for(timeout=60_000)

        page.goto(url + "/catalog")  # a typed URL: a new session
        assert "steward" in _identity(page), "a typed URL keeps the persona"
        page.reload()
        assert "steward" in _identity(page), "a reload keeps the persona"
        page.goto(url + "/checks?product=anything")  # a deep link
        assert "steward" in _identity(page), "a deep link keeps the persona"
    with connect(db) as con:
        logins = audit_query.query(con, action="login", newest_first=False)
    assert logins.actor.tolist() == ["viewer@demo.meshgov.local", "steward@demo.meshgov.local"], \
        f"one login row per persona change, not per page load: {logins.actor.tolist()}"

