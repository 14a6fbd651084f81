"""Catalog data preview: PII masked for roles without view_pii; a data scientist may reveal
it and that view lands in the audit trail."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from catalog.access import ROLES, demo_user
from catalog.store import connect
from checks.preview import dataset_preview
from sample_data.generate import seed
from ui.auth import PERSONA_KEY

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def seeded_db(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("preview") / "demo.duckdb"
    seed(db)
    return db


def _preview(db: Path, persona: str, monkeypatch) -> AppTest:
    monkeypatch.setenv("MESHGOV_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state[PERSONA_KEY] = persona
    at.query_params["product"] = "customer-profiles"
    at.run()
    return at.switch_page("views/catalog_page.py").run()


def _emails(at: AppTest) -> list[str]:
    frame = next(f.value for f in at.dataframe if "email" in f.value.columns and "signup_at" in f.value.columns)
    return [str(v) for v in frame["email"]]


def test_viewer_sees_masked_emails(seeded_db, monkeypatch):
    at = _preview(seeded_db, "viewer", monkeypatch)
    assert not at.exception, at.exception
    emails = _emails(at)
    assert emails and all("***" in e for e in emails), f"a viewer must only see masked e-mails: {emails[:3]}"
    assert not [t for t in at.toggle if "Reveal PII" in t.label], "a viewer is not offered the reveal toggle"


def test_data_scientist_reveal_is_audited(seeded_db, monkeypatch):
    at = _preview(seeded_db, "data_scientist", monkeypatch)
    reveal = next(t for t in at.toggle if "Reveal PII" in t.label)
    reveal.set_value(True).run()
    assert not at.exception, at.exception
    emails = _emails(at)
    assert emails and all("@" in e and "***" not in e for e in emails), "revealed e-mails are shown in full"
    with connect(seeded_db) as con:
        views = con.execute("SELECT actor, target FROM audit_log WHERE action = 'view_pii'").fetchall()
    assert ("data_scientist@demo.meshgov.local", "customer-profiles.users") in views, views


@pytest.mark.parametrize("role", [r for r in ROLES if r != "data_scientist"])
def test_direct_call_without_view_pii_stays_masked_even_when_asking_to_reveal(seeded_db, role):
    rows, pii = dataset_preview(seeded_db, product_id="customer-profiles", dataset="users",
                                user=demo_user(role), reveal=True)
    assert {"email", "full_name", "phone"} <= set(pii), pii
    assert all("***" in str(v) for v in rows["email"]), f"no path gives a {role} unmasked PII"
