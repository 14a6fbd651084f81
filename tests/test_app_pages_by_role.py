"""Smoke test over every page × role, driven through the real frame (app.py), and the one
page table: every page the permission matrix names is a file that exists, and every page
file in views/ is in the table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.util import patch_config_options

from catalog import access
from catalog.store import connect
from ui.auth import PERSONA_KEY

ROOT = Path(__file__).resolve().parent.parent


def test_the_page_table_is_the_views_folder():
    files = {page.file for page in access.PAGE_TABLE}
    assert all((ROOT / f).is_file() for f in files), f"every page in the table exists: {files}"
    page_files = {f"views/{p.name}" for p in (ROOT / "views").glob("*_page.py")}
    assert page_files == files, f"views/*_page.py and access.PAGE_TABLE name the same pages: {page_files ^ files}"
    for role, pages in access.PAGE_ACCESS.items():
        assert pages <= set(access.PAGES), f"{role} is granted pages that do not exist: {pages - set(access.PAGES)}"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = tmp_path_factory.mktemp("pages") / "app.duckdb"
    with connect(path):
        pass
    return path


def _shown(markdown: str) -> str:
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", markdown).replace("\u2060", "")


@pytest.mark.parametrize("role", access.ROLES)
@pytest.mark.parametrize("page", access.PAGE_TABLE, ids=lambda p: p.key)
def test_every_page_for_every_role(store, monkeypatch, page, role):
    monkeypatch.setenv("MESHGOV_DB", str(store))
    allowed = page.key in access.PAGE_ACCESS[role]
    # A page this role may open, through the frame as a user reaches it; one it may not, run
    # on its own: the view must refuse by itself even when reached around the frame (the
    # frame's own refusal for a typed URL is a browser test: tests/test_ui_demo_browser.py).
    at = AppTest.from_file(str(ROOT / ("app.py" if allowed else page.file)), default_timeout=60)
    at.session_state[PERSONA_KEY] = role
    with patch_config_options({"server.address": "127.0.0.1"}):
        at.run()
        if allowed:
            at.switch_page(page.file).run()
    assert not at.exception, f"{page.key} as {role} raised: {[e.value for e in at.exception]}"
    errors = " | ".join(_shown(e.value) for e in at.error)
    if allowed:
        assert at.title, f"{page.key} as {role} shows its title"
        assert "may not open" not in errors, f"{role} may open {page.key} but was refused: {errors}"
    else:
        assert f"may not open the {page.key} page" in errors, f"{role} must be refused {page.key}: {errors}"
