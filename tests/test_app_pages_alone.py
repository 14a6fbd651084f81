"""Every page file runs alone, in a fresh interpreter, without an exception.

`AppTest.from_file("views/x.py")` puts views/ first on sys.path: a page named like a package
(views/catalog_page.py) shadowed it, and the suite was green only through the order of imports.
A subprocess per page gives each a fresh interpreter, as a user's `streamlit run` would.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGE_FILES = sorted((ROOT / "views").glob("*_page.py"))

PROBE = """
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=60).run()
print(json.dumps({"exception": [str(e.value) for e in at.exception]}))
"""


def test_there_are_pages_to_check():
    assert len(PAGE_FILES) >= 6, f"views/ should hold the app's pages, found {PAGE_FILES}"


@pytest.mark.parametrize("page", PAGE_FILES, ids=lambda p: p.name)
def test_page_file_runs_alone_in_a_fresh_interpreter(page, tmp_path):
    env = {**os.environ, "MESHGOV_DB": str(tmp_path / "empty.duckdb")}
    done = subprocess.run([sys.executable, "-c", PROBE, str(page)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, f"{page.name} crashed its interpreter:\n{done.stderr[-2000:]}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert not report["exception"], f"{page.name} raised when run alone: {report['exception']}"
