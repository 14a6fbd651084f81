"""Browser: a real OIDC login in headless Chromium against oidc-provider-mock, the audited
login and export, and the demo mode's refusal to listen beyond loopback."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from catalog import audit_query, audit_verify
from catalog.store import connect
from tests.browser_support import (
    ARTIFACTS,
    chromium_page,
    free_port,
    require_chromium,
    streamlit_server,
)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures" / "auth"
APP = ROOT / "app.py"
LOU = {"sub": "lou", "email": "lou.legal@example.com", "email_verified": True, "name": "Lou Legal",
       "groups": ["legal-team"]}


def _wait_http(url: str, proc: subprocess.Popen, log: Path, *, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited early; see {log}")
        with contextlib.suppress(OSError):
            if urllib.request.urlopen(url, timeout=1).status == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not up within {seconds:.0f} s; see {log}")


@contextlib.contextmanager
def _process(cmd: list[str], *, ready_url: str, env: dict[str, str], name: str) -> Iterator[None]:
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / f"{name}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            _wait_http(ready_url, proc, log)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def oidc_provider(claims: dict = LOU) -> Iterator[str]:
    """oidc-provider-mock's CLI on 127.0.0.1 (its Python helper would bind `localhost`)."""
    exe = shutil.which("oidc-provider-mock", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("oidc-provider-mock is missing: pip install oidc-provider-mock==0.3.4")
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    with _process([exe, "-H", "127.0.0.1", "-p", str(port), "--user-claims", json.dumps(claims)],
                  ready_url=f"{issuer}/.well-known/openid-configuration", env={}, name=f"oidc-{port}"):
        yield issuer


def streamlit_app(script: Path, *, env: dict[str, str], address: str = "127.0.0.1",
                  secrets: Path | None = None, port: int | None = None):
    """The real frame through the shared launcher, with a secrets file when login is tested."""
    assert script == APP, "browser tests drive the real app.py"
    return streamlit_server(env=env, extra_args=["--secrets.files", str(secrets)] if secrets else [],
                            address=address, port=port)


def _write_secrets(path: Path, *, issuer: str, app_port: int) -> Path:
    path.write_text(
        "[auth]\n"
        f'redirect_uri = "http://127.0.0.1:{app_port}/oauth2callback"\n'
        'cookie_secret = "browser-test-cookie-secret-0123456789"\n'
        'client_id = "meshgov-test"\n'
        'client_secret = "meshgov-test-secret"\n'
        f'server_metadata_url = "{issuer}/.well-known/openid-configuration"\n')
    return path


@pytest.mark.browser
def test_real_oidc_login_then_legal_reads_and_exports_the_trail(tmp_path):
    require_chromium()
    db = tmp_path / "oidc.duckdb"
    with connect(db):
        pass
    app_port = free_port()
    env = {"MESHGOV_DB": str(db), "MESHGOV_ROLES_FILE": str(FIXTURES / "roles.toml")}
    with oidc_provider() as issuer:
        secrets = _write_secrets(tmp_path / "secrets.toml", issuer=issuer, app_port=app_port)
        with streamlit_app(APP, env=env, secrets=secrets, port=app_port, address="0.0.0.0") as url, \
                chromium_page() as page:
            page.goto(url)
            login = page.get_by_role("button", name="Log in")
            login.wait_for(timeout=30_000)
            assert page.get_by_text("Demo persona").count() == 0, "no personas when login is configured"

            started = time.perf_counter()
            login.click()
            page.get_by_role("button", name="lou").click(timeout=30_000)  # the provider's user picker
            page.get_by_text("Roles: legal · via oidc").wait_for(timeout=30_000)  # the identity sidebar
            login_seconds = time.perf_counter() - started

            page.get_by_role("link", name="Audit trail").click()
            page.get_by_text("The trail is intact").wait_for(timeout=30_000)
            assert page.get_by_role("link", name="Admin").count() == 0, "legal has no admin page"
            with page.expect_download(timeout=30_000) as download_info:
                page.get_by_role("button", name="Export CSV (audited)").click()
            exported = Path(download_info.value.path()).read_text()
            page.screenshot(path=str(ARTIFACTS / "audit-page-oidc.png"), full_page=True)

            page.get_by_role("button", name="Log out").click()
            page.get_by_role("button", name="End session").click(timeout=30_000)  # the provider's page
            page.get_by_role("button", name="Log in").wait_for(timeout=30_000)

    assert "lou.legal@example.com" in exported and exported.startswith("seq,logged_at,actor"), exported[:300]
    with connect(db) as con:
        rows = audit_query.query(con, newest_first=False)
        chain = audit_verify.verify(con)
    logins = rows[rows.action == "login"]
    assert (logins.actor.tolist(), logins.via.tolist()) == (["lou.legal@example.com"], ["oidc"]), rows
    assert '"legal-team"' in logins.after.iloc[0], "the login row records the group claim"
    assert rows.action.tolist()[-2:] == ["export", "logout"], rows.action.tolist()
    assert set(rows.actor.tolist()[-2:]) == {"lou.legal@example.com"}, rows.actor.tolist()
    assert rows.actor.tolist()[0] == "system", "the first start seeded the role bindings, audited"
    assert chain.ok, chain.summary()
    print(f"\nOIDC login (click 'Log in' → signed-in page): {login_seconds:.2f} s")
    assert login_seconds < 30, f"login took {login_seconds:.1f} s"


@pytest.mark.browser
def test_demo_mode_on_every_interface_shows_only_the_refusal(tmp_path):
    require_chromium()
    empty_secrets = tmp_path / "no-auth.toml"
    empty_secrets.write_text("# no [auth]: demo mode\n")
    env = {"MESHGOV_DB": str(tmp_path / "demo.duckdb")}
    with streamlit_app(APP, env=env, address="0.0.0.0", secrets=empty_secrets) as url, \
            chromium_page() as page:
        page.goto(url)
        page.get_by_text("refuses to serve on 0.0.0.0 without login").wait_for(timeout=30_000)
        assert page.get_by_text("Demo persona").count() == 0, "no persona switcher may render"
        assert page.get_by_role("link", name="Audit trail").count() == 0, "no navigation may render"
        page.screenshot(path=str(ARTIFACTS / "demo-refusal.png"), full_page=True)


# Issue 8 item 3: the provider let this user claim the admin's address, unverified, in other
# case and with a trailing space; and a name claim made of markup (item 4).
MALLORY = {"sub": "mallory", "email": "Ada.Admin@Example.com ", "email_verified": False,
           "name": "[Session expired](https://evil.example/login) ![t](https://evil.example/p.png) "
                   "<img src=x onerror=\"window.__pwned=1\">"}


@pytest.mark.browser
def test_unverified_admin_email_logs_in_without_the_admin_role_and_the_name_is_text(tmp_path):
    require_chromium()
    db = tmp_path / "oidc.duckdb"
    with connect(db):
        pass
    app_port = free_port()
    env = {"MESHGOV_DB": str(db), "MESHGOV_ROLES_FILE": str(FIXTURES / "roles.toml")}
    fetched: list[str] = []
    with oidc_provider(MALLORY) as issuer:
        secrets = _write_secrets(tmp_path / "secrets.toml", issuer=issuer, app_port=app_port)
        with streamlit_app(APP, env=env, secrets=secrets, port=app_port) as url, chromium_page() as page:
            page.on("request", lambda r: fetched.append(r.url) if "evil.example" in (r.url.split("/")[2]) else None)
            page.goto(url)
            page.get_by_role("button", name="Log in").click(timeout=30_000)
            page.get_by_role("button", name="mallory").click(timeout=30_000)
            page.get_by_text("Roles: viewer · via oidc").wait_for(timeout=30_000)
            assert page.get_by_role("link", name="Admin").count() == 0, "no Admin in the menu"
            page.goto(url + "/admin")
            page.get_by_text("may not open the admin page", exact=False).first.wait_for(timeout=30_000)
            assert page.get_by_text("Role bindings").count() == 0, "nothing of the Admin page renders"
            marked_up = page.evaluate("""() => document.querySelectorAll(
                '[href*="evil.example"], [src*="evil.example"], [onerror]').length""")
            pwned = page.evaluate("() => window.__pwned ?? null")
            page.screenshot(path=str(ARTIFACTS / "oidc-unverified-admin-email.png"))
    assert marked_up == 0 and pwned is None, "the name claim must be shown as text"
    assert not fetched, f"the name claim made the browser fetch: {fetched}"
    with connect(db) as con:
        logins = audit_query.query(con, action="login")
    # Two sessions (the login, then the typed /admin): OIDC logins are audited per session.
    assert set(logins.actor) == {"Ada.Admin@Example.com  (unverified)"}, \
        f"the trail marks the address the provider did not verify: {logins.actor.tolist()}"
    assert all('"matched":["default"]' in a and '"roles":["viewer"]' in a for a in logins.after), \
        f"the audit says no binding matched: {logins.after.tolist()}"
