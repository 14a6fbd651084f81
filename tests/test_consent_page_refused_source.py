"""The consent page when the consent records lie outside the data roots: it says why the
opt-in trend is missing instead of showing a stack trace, and still shows the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from sample_data import generate
from ui.auth import PERSONA_KEY

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("consent-refused") / "meshgov.duckdb"
    generate.seed(db)
    return db


def test_consent_page_names_a_refused_source(demo, tmp_path, monkeypatch):
    monkeypatch.setenv("MESHGOV_DB", str(demo))
    monkeypatch.setenv("MESHGOV_DATA_ROOTS", str(tmp_path))  # the demo's files are elsewhere
    at = AppTest.from_file(str(ROOT / "views" / "consent_page.py"), default_timeout=90)
    at.session_state[PERSONA_KEY] = "admin"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    warnings = " ".join(w.value for w in at.warning)
    assert "consent records cannot be read" in warnings, f"the page says why the trend is missing: {warnings}"
    assert "outside the data roots" in warnings, f"and names the rule that refused the file: {warnings}"
    assert at.title and at.title[0].value == "Consent", "the rest of the page is still drawn"
