"""The store as seen from a page: a short-lived connection per use.

The app never keeps the DuckDB file open between reruns, so the CLI (the CI gate) can
write to the same file while the app is up; see catalog.store for the lock retry.
"""

from __future__ import annotations

import contextlib
import os

from catalog.settings import default_db_path
from catalog.store import connect


def db_path() -> str:
    return os.environ.get("MESHGOV_DB") or str(default_db_path())


@contextlib.contextmanager
def conn(db: str | None = None):
    """The DB named by `db` (cached loaders pass it so each DB has its own cache entries)."""
    with connect(db or db_path()) as con:
        yield con
