"""The legal features on the seeded demo, through the CLI as a user runs them:

- `python -m catalog evidence --product ID --out pack.html` writes a file that opens in headless
  Chromium with the network cut off (every request is recorded and refused) and holds every
  section, the contract hash and the audit-chain result;
- the trace of a seeded user who got the newsletter without consent shows the violation;
- the extract of customer-profiles holds none of its e-mails, names or birth dates and reports k.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from catalog import access, audit_query
from catalog.store import connect
from checks import runner
from legal import evidence, pseudonyms, trace
from sample_data import generate
from ui.text import md


@pytest.fixture(autouse=True)
def _data_under_the_test_folders(tmp_path_factory, monkeypatch):
    """Data files and extracts of these tests live in pytest's temp folders: make those the
    data roots (meshgov reads and writes data only under its roots)."""
    monkeypatch.setenv("MESHGOV_DATA_ROOTS", str(tmp_path_factory.getbasetemp()))

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
# A member of the newsletter audience who never opted in to AI recommendations, and one of
# the sends they received (SCENARIO.md defect 5; row content is the same on every seed).
NO_CONSENT_USER, NO_CONSENT_SEND = "u-01922", "snd-026506"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("legal-demo") / "meshgov.duckdb"
    generate.seed(db)
    runner.run_checks(db, triggered_by="test")
    return db


def _cli(*args: str, db: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "catalog", *args, "--db", str(db)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_evidence_pack_opens_offline_with_every_section(demo: Path, tmp_path: Path):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Debian chromium not installed at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    out = tmp_path / "pack.html"
    done = _cli("evidence", "--product", "user-segments", "--out", str(out), db=demo)
    assert done.returncode == 0, done.stderr
    text = out.read_text(encoding="utf-8")
    with connect(demo) as con:
        contract_hash = con.execute("SELECT content_hash FROM contracts WHERE product_id = 'user-segments' "
                                    "ORDER BY revision DESC LIMIT 1").fetchone()[0]
        export = audit_query.query(con, action="export", limit=1).iloc[0]
    assert hashlib.sha256(out.read_bytes()).hexdigest() in export["after"], "the export row names this file"
    assert text.count("plotly.js v") <= 2 and text.count('<script type="text/javascript">/**') <= 1, \
        "plotly's JavaScript is inlined once"
    assert "cdn.plot.ly" not in text.split("</style>")[1].split("<script")[0]

    requests: list[str] = []
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(offline=True)
            page = context.new_page()

            def refuse_network(route):
                requests.append(route.request.url)
                if route.request.url == out.as_uri():
                    route.continue_()
                else:
                    route.abort()

            page.route("**/*", refuse_network)
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(out.as_uri())
            page.wait_for_function("document.querySelectorAll('.chart .main-svg').length > 0", timeout=30_000)
            sections = page.eval_on_selector_all("section[data-section]", "els => els.map(e => e.dataset.section)")
            charts = page.locator(".chart").count()
            drawn = page.eval_on_selector_all(".chart", "els => els.filter(e => e.querySelector('.main-svg')).length")
            hash_shown = page.locator('[data-hash="contract"]').inner_text()
            chain = page.locator("[data-chain]").get_attribute("data-chain")
            chain_text = page.locator("[data-chain]").inner_text()
            generated = page.locator('[data-field="generated-at"]').inner_text()
            generator = page.locator('[data-field="generator"]').inner_text()
            bias = page.locator('section[data-section="bias"]').inner_text()
            raw = page.locator("pre.raw").inner_text()
        finally:
            browser.close()
    assert requests == [out.as_uri()], f"the pack may load nothing but itself: {requests}"
    assert errors == [], errors
    assert sections == list(evidence.SECTIONS), sections
    assert charts >= 3 and drawn == charts, f"{drawn} of {charts} charts drawn offline"
    assert hash_shown == contract_hash and hashlib.sha256(raw.strip().encode()).hexdigest() != "", hash_shown
    assert chain == "ok" and "intact" in chain_text, chain_text
    assert generated.endswith("UTC") and generator.startswith("meshgov "), (generated, generator)
    assert "premium-propensity" in bias and "0.49" in bias, "the seeded bias disparity is in the pack"


def test_evidence_at_a_time_before_the_seed_has_no_contract(demo: Path):
    with connect(demo) as con:
        pack = evidence.build_pack(con, user=access.demo_user("legal"), product="customer-profiles",
                                   at="2000-01-01", record=False)
    assert "No contract of this product had been ingested by 2000-01-01" in pack.html
    assert "No complete check run had checked this product" in pack.html


def test_trace_shows_the_send_without_consent(demo: Path):
    done = _cli("trace", "--user", NO_CONSENT_USER, "--send", NO_CONSENT_SEND, "--json", "--as", "counsel", db=demo)
    assert done.returncode == 1, f"a use without consent exits 1: {done.stderr}"
    found = json.loads(done.stdout)
    assert found["compliant"] is False and found["violations"] == 1, found
    bad = [u for u in found["uses"] if not u["valid"]]
    assert [(u["product_id"], u["dataset"], u["row_key"], u["purpose"]) for u in bad] == [
        ("newsletter-sends", "sends", NO_CONSENT_SEND, "ai_recommendations")], bad
    assert bad[0]["reason"] in ("no consent", "withdrawn before use")
    assert found["user"] == pseudonyms.pseudonym(NO_CONSENT_USER) and found["user_key"] is None
    assert NO_CONSENT_USER not in done.stdout, "the CLI (admin, no view_pii) shows only the pseudonym"
    assert found["model"] == "rfm-segmenter" and found["model_version"].startswith("rfm-segmenter-")
    assert found["segment"], "the segment that drove the recommendation"
    assert {"customer-profiles", "commerce-orders"} <= set(found["source_products"]), found["source_products"]
    assert found["features"] and found["features"][0]["dataset"] == "features"
    with connect(demo) as con:
        rows = audit_query.query(con, action="trace", limit=1)
    assert rows.iloc[0]["actor"] == "counsel" and found["user"] in rows.iloc[0]["target"]


def test_trace_reveals_identity_only_with_view_pii(demo: Path):
    with connect(demo) as con:
        legal_view = trace.trace(con, user_key=NO_CONSENT_USER, user=access.demo_user("admin"))
        before = len(audit_query.query(con, action="view_pii"))
        scientist = access.demo_user("data_scientist")
        with pytest.raises(access.PermissionDenied):
            trace.trace(con, user_key=NO_CONSENT_USER, user=scientist)  # no Consent page for this role
        # a consent-page role that also holds view_pii
        both = access.User("dpo@example.com", "DPO", ("legal", "data_scientist"), "demo")
        revealed = trace.trace(con, user_key=legal_view.pseudonym, user=both)
        after = len(audit_query.query(con, action="view_pii"))
    assert legal_view.user_key is None and not legal_view.revealed
    masked_text = json.dumps(legal_view.to_json(), default=str)
    assert revealed.revealed and revealed.user_key == NO_CONSENT_USER, "the pseudonym resolves back for view_pii"
    emails = {str(v) for item in revealed.identity + revealed.chain["steps"] for r in item["rows"]
              for v in r.values() if "@" in str(v) and "***" not in str(v)}
    assert emails, "raw e-mails are shown to view_pii"
    assert not any(e in masked_text for e in emails), \
        "without view_pii no e-mail is shown, declared PII or not (interactions.recipient_email is unclassified)"
    assert NO_CONSENT_USER not in masked_text
    assert after > before, "the unmasked view is audited"
    assert not revealed.compliant


def test_extract_of_customer_profiles_holds_no_raw_identity(demo: Path, tmp_path: Path):
    out = tmp_path / "sandbox" / "customers.parquet"
    done = _cli("extract", "--product", "customer-profiles", "--out", str(out), "--json", db=demo)
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert {"out", "rows", "k", "quasi_identifiers", "dropped", "masked", "hashed"} <= set(report)
    assert report["k"] >= 5 and report["rows"] > 4900, report
    assert {"email", "full_name", "phone"} <= set(report["dropped"]) and report["hashed"] == ["user_id"]
    with connect(demo) as con:
        source = con.execute("SELECT source_file FROM contracts WHERE product_id = 'customer-profiles'").fetchone()[0]
        entry = con.execute("SELECT count(*) FROM products WHERE product_id = 'customer-profiles-users-sandbox'"
                            ).fetchone()[0]
    users = Path(source).parent.parent.parent / "data" / "customer-profiles" / "users.parquet"
    raw = duckdb.read_parquet(str(users)).df()
    written = duckdb.read_parquet(str(out)).df()
    cells = {str(v) for v in written.to_numpy().ravel()}
    secrets = set(raw["email"]) | set(raw["full_name"]) | {str(d) for d in raw["birth_date"]} | set(raw["user_id"])
    assert not cells & secrets, f"raw identity leaked: {sorted(cells & secrets)[:5]}"
    assert not any("@" in c for c in cells), "no e-mail address at all"
    assert entry == 1, "the extract has its own catalog entry"
    assert _cli("extract", "--product", "customer-profiles", "--out", str(tmp_path / "strict.parquet"),
                "--k-min", "1000", db=demo).returncode == 1, "k below the minimum fails"
    assert not (tmp_path / "strict.parquet").exists()


def test_cli_user_errors_are_one_line(demo: Path, tmp_path: Path):
    done = _cli("trace", "--user", "u-99999", db=demo)
    assert done.returncode == 2 and "Traceback" not in done.stderr and "no such user" in done.stderr, done.stderr
    done = _cli("trace", "--user", NO_CONSENT_USER, "--send", "snd-000001", db=demo)
    assert done.returncode == 2 and "is not a use of this user" in done.stderr, done.stderr
    done = _cli("extract", "--product", "user-segments", "--out", str(tmp_path / "x.parquet"), db=demo)
    assert done.returncode == 2 and "--dataset" in done.stderr, done.stderr
    shutil.rmtree(tmp_path, ignore_errors=True)


def _page(demo: Path, file: str, role: str, monkeypatch, *, query: dict | None = None, frame: bool = True):
    from streamlit.testing.v1 import AppTest

    from ui.auth import PERSONA_KEY

    monkeypatch.setenv("MESHGOV_DB", str(demo))
    # Through the frame (app.py), so the product page's links to other pages resolve.
    at = AppTest.from_file(str(ROOT / ("app.py" if frame else f"views/{file}")), default_timeout=120)
    at.session_state[PERSONA_KEY] = role
    for name, value in (query or {}).items():
        at.query_params[name] = value
    at.run()
    return at.switch_page(f"views/{file}").run() if frame else at


def test_consent_page_trace_form_shows_the_violation(demo: Path, monkeypatch):
    at = _page(demo, "consent_page.py", "legal", monkeypatch, frame=False)  # not in app.py's list yet
    assert not at.exception, at.exception
    at.text_input(key="trace_user").set_value(NO_CONSENT_USER)
    at.text_input(key="trace_send").set_value(NO_CONSENT_SEND)
    at.button(key="trace_go").click().run()
    assert not at.exception, at.exception
    errors = " ".join(e.value for e in at.error)
    # The pseudonym is shown as text: its Markdown source carries escapes (`p\:…`), see ui.text.md.
    shown = md(pseudonyms.pseudonym(NO_CONSENT_USER))
    assert "Not compliant: 1 use(s)" in errors and shown in errors, errors
    texts = " ".join(t.value for t in at.text)
    assert "VIOLATION" in texts and NO_CONSENT_USER not in texts, "legal sees the pseudonym, not the key"


@pytest.mark.parametrize("role", ["legal", "steward", "viewer"])
def test_product_page_offers_legal_actions_by_role(demo: Path, role: str, monkeypatch):
    at = _page(demo, "catalog_page.py", role, monkeypatch, query={"product": "customer-profiles"})
    assert not at.exception, at.exception
    keys = {b.key for b in at.button}
    downloads = [el for el in at.get("download_button")]
    captions = " ".join(c.value for c in at.caption)
    assert ("extract_go" in keys) == access.can(access.demo_user(role), "make_extract"), keys
    if access.can(access.demo_user(role), "export_evidence"):
        assert downloads, "the evidence download button is offered"
    else:
        assert not downloads and "Evidence packs need one of the roles" in captions, captions


def test_product_page_extract_button_writes_the_extract(demo: Path, monkeypatch, tmp_path: Path):
    monkeypatch.setenv("MESHGOV_DATA_DIR", str(tmp_path))
    at = _page(demo, "catalog_page.py", "data_scientist", monkeypatch, query={"product": "customer-profiles"})
    at.button(key="extract_go").click().run()
    assert not at.exception, at.exception
    assert any("k-anonymity passed" in s.value for s in at.success), [s.value for s in at.success]
    assert (tmp_path / "sandbox" / "customer-profiles-users-sandbox.parquet").is_file()


def test_audit_page_offers_the_evidence_pack(demo: Path, monkeypatch):
    at = _page(demo, "audit_page.py", "legal", monkeypatch)
    assert not at.exception, at.exception
    assert at.selectbox(key="audit_evidence_kind").value == "product"
    assert [el for el in at.get("download_button")], "audit export and evidence pack buttons"
