"""The store as seen from a page: a connection of its own per use.

Each use is a cursor on the DuckDB instance the process holds for a few idle seconds; the
instance is handed over as soon as another process (the CLI, the CI gate) queues for the
file, so it can write to the same file while the app is up; see catalog.store.
"""

from __future__ import annotations

import contextlib
import os

import streamlit as st

from catalog import queries
from catalog.settings import default_db_path
from catalog.store import connect


def db_path() -> str:
    return os.environ.get("MESHGOV_DB") or str(default_db_path())


@contextlib.contextmanager
def conn(db: str | None = None):
    """The DB named by `db` (cached loaders pass it so each DB has its own cache entries)."""
    with connect(db or db_path()) as con:
        yield con


@st.cache_data(ttl=5, show_spinner=False)
def store_version(db: str) -> tuple:
    """catalog.queries.store_version of `db`, read at most every 5 s: pages key their cached
    computations (posture, SLOs) on it, so a rerun re-reads nothing until the store changed."""
    with conn(db) as con:
        return queries.store_version(con)
