"""Shared fixtures: where the real third-party files are, and a fresh store per test."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from catalog import store

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SHARED_FIXTURES = PROJECT_ROOT.parent / "shared" / "fixtures"
LOCAL_FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session", autouse=True)
def _private_config_dir(tmp_path_factory) -> Path:
    """A config folder of the test session (the audit key file lands there, not in ~/.config).

    Set in os.environ, so every store of this process and every subprocess a test starts
    finds the same key."""
    path = tmp_path_factory.mktemp("config")
    os.environ["MESHGOV_CONFIG_DIR"] = str(path)
    os.environ.pop("MESHGOV_AUDIT_KEY", None)
    return path


@pytest.fixture(scope="session")
def shared_fixtures() -> Path:
    """`../shared/fixtures` beside the project: real files written by other projects.

    CI has `shared/` beside the clone; elsewhere the tests that need it skip, saying why.
    """
    if not SHARED_FIXTURES.is_dir():
        pytest.skip(f"real third-party fixtures not found at {SHARED_FIXTURES} "
                    "(expected ../shared/fixtures beside the project, as in CI)")
    return SHARED_FIXTURES


@pytest.fixture(scope="session")
def _migrated_template(tmp_path_factory, _private_config_dir) -> Path:
    path = tmp_path_factory.mktemp("template") / "meshgov.duckdb"
    with store.connect(path):
        pass
    return path


@pytest.fixture()
def tmp_db(tmp_path: Path, _migrated_template: Path) -> Path:
    """Path of a fresh store file, created and migrated to the latest schema.

    A copy of one migrated file: running every migration per test cost ~0.15 s each.
    """
    path = tmp_path / "meshgov.duckdb"
    shutil.copyfile(_migrated_template, path)
    return path
