"""Builders shared by the checks tests: a small mesh (contracts from tests/fixtures/checks,
Parquet written into tmp_path, ingested into a fresh DuckDB catalog). No tests here."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pandas as pd

from catalog.ingest import ingest_paths
from catalog.store import connect

FIXTURES = Path(__file__).parent / "fixtures" / "checks"
NOW = dt.datetime(2026, 11, 20, 12, 0, 0, tzinfo=dt.UTC)


def orders_frame(*, fresh: bool = True, clean: bool = False) -> pd.DataFrame:
    """Rows for tests/fixtures/checks/shop.yaml. Unless `clean`, it has one duplicate
    order_id, one null email, one malformed email, one invalid + one missing status, one
    amount out of range and one over 900, one code too long. Timestamps are 1 h old when
    `fresh`, else 5 days old (relative to NOW)."""
    newest = NOW.replace(tzinfo=None) - (dt.timedelta(hours=1) if fresh else dt.timedelta(days=5))
    rows = {
        "order_id": ["o-001", "o-002", "o-003", "o-004", "o-005", "o-006", "o-007", "o-008", "o-009", "o-010"],
        "email": ["a@x.com", "b@x.com", "c@x.com", "d@x.com", "e@x.com", "f@x.com", "g@x.com", "h@x.com",
                  "i@x.com", "j@x.com"],
        "status": ["new", "paid", "shipped", "new", "paid", "shipped", "new", "paid", "shipped", "new"],
        "amount": [10.0, 20.0, 30.0, None, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0],
        "code": ["ab", "abc", "abcd", "ab", "ab", "ab", "ab", "ab", "ab", "ab"],
        "ordered_at": [newest - dt.timedelta(hours=i) for i in range(10)],
    }
    frame = pd.DataFrame(rows)
    if not clean:
        frame.loc[1, "order_id"] = "o-001"      # duplicate key
        frame.loc[2, "email"] = None             # required -> null
        frame.loc[3, "email"] = "not an email"   # pattern
        frame.loc[4, "status"] = "lost"          # invalid value (10 %)
        frame.loc[5, "status"] = "n/a"           # missing value, also invalid (20 % invalid)
        frame.loc[6, "amount"] = 1200.0          # out of range, and > 900 for the sql rule
        frame.loc[7, "code"] = "abcdef"          # too long
    return frame


def build_mesh(tmp_path: Path, contracts: dict[str, str | Path], frames: dict[str, pd.DataFrame] | None = None,
               *, db_name: str = "catalog.duckdb") -> Path:
    """Copy contracts (fixture names or YAML text) into tmp_path, write frames as Parquet
    under tmp_path/data/<name>.parquet, ingest, return the DB path."""
    (tmp_path / "data").mkdir(exist_ok=True)
    files = []
    for name, source in contracts.items():
        target = tmp_path / f"{name}.yaml"
        if isinstance(source, Path):
            shutil.copy(source, target)
        elif "\n" in source:
            target.write_text(source)
        else:
            shutil.copy(FIXTURES / source, target)
        files.append(target)
    for name, frame in (frames or {}).items():
        frame.to_parquet(tmp_path / "data" / f"{name}.parquet", index=False)
    db = tmp_path / db_name
    with connect(db) as con:
        report = ingest_paths(con, files, actor="tests")
    assert not report.rejected, f"fixture contracts must be valid: {report.rejected}"
    return db


def fixture_text(name: str, **replacements: str) -> str:
    text = (FIXTURES / name).read_text()
    for key, value in replacements.items():
        text = text.replace(key, value)
    return text


def by_id(results) -> dict:
    return {r.check_id: r for r in results}
