"""Migrations: an older DB is upgraded on open, keeping its data; a failed migration rolls back."""

from __future__ import annotations

import duckdb
import pytest

from catalog import store
from catalog.ingest import ingest_paths
from tests.conftest import LOCAL_FIXTURES

ORDERS = LOCAL_FIXTURES / "contracts" / "orders.v1.odcs.yaml"


def only_first_migrations(monkeypatch, upto: int):
    everything = store._migrations()
    monkeypatch.setattr(store, "_migrations", lambda: [m for m in everything if m[0] <= upto])
    return everything


def test_database_at_version_1_is_upgraded_on_open(tmp_path, monkeypatch):
    path = tmp_path / "old.duckdb"
    everything = only_first_migrations(monkeypatch, 1)
    with store.connect(path) as con:  # what the first release wrote
        assert [r[0] for r in con.execute("SELECT version FROM schema_version").fetchall()] == [1]
        # rows as the first release wrote them (today's ingest needs today's tables)
        con.execute("INSERT INTO domains VALUES ('commerce', 'Commerce', NULL)")
        con.execute("INSERT INTO products (product_id, name, domain_id, created_at, updated_at) "
                    "VALUES ('orders', 'Orders', 'commerce', now(), now())")
        con.execute("INSERT INTO contracts VALUES ('commerce-orders', 1, '1.0.0', 'orders', 'orders', "
                    "'v3.1.0', 'v3.1.0', 'active', ?, 'hash', 'orders.yaml', now(), 'test')",
                    [ORDERS.read_text()])
        for position, name in enumerate(["order_id", "customer_email", "amount"]):
            con.execute("INSERT INTO columns (contract_id, product_id, dataset, column_name, position, pii) "
                        "VALUES ('commerce-orders', 'orders', 'order_lines', ?, ?, false)", [name, position])
        old_tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    monkeypatch.setattr(store, "_migrations", lambda: everything)

    with store.connect(path) as con:
        recorded = [r[0] for r in con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()]
        new_tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        kept = con.execute("SELECT contract_id, revision FROM contracts").fetchall()
        columns = con.execute("SELECT count(*) FROM columns").fetchone()[0]
        report = ingest_paths(con, [LOCAL_FIXTURES / "contracts" / "orders.v2.odcs.yaml"])
        revisions = [r[0] for r in con.execute(
            "SELECT revision FROM contracts WHERE contract_id = 'commerce-orders' ORDER BY 1").fetchall()]
    latest = store.latest_schema_version()
    assert recorded == [v for v, _, _ in everything] and recorded[-1] == latest, \
        f"every later migration applied once: {recorded}"
    assert "check_results" in new_tables - old_tables, "the tables of later migrations exist after the upgrade"
    assert kept == [("commerce-orders", 1)] and columns == 3, "data written at version 1 survives the upgrade"
    assert report.accepted and revisions == [1, 2], \
        f"the upgraded store takes a new revision on top of the old one: {report.to_json()} {revisions}"


def test_each_intermediate_version_upgrades_to_the_latest(tmp_path, monkeypatch):
    everything = store._migrations()
    for upto in range(1, len(everything)):
        path = tmp_path / f"v{upto}.duckdb"
        monkeypatch.setattr(store, "_migrations", lambda upto=upto: [m for m in everything if m[0] <= upto])
        with store.connect(path):
            pass
        monkeypatch.setattr(store, "_migrations", lambda: everything)
        with store.connect(path) as con:
            recorded = [r[0] for r in con.execute("SELECT version FROM schema_version ORDER BY 1").fetchall()]
        assert recorded == [m[0] for m in everything], f"from version {upto}: {recorded}"


def test_a_failing_migration_rolls_back_and_leaves_the_version(tmp_path, monkeypatch):
    path = tmp_path / "half.duckdb"
    everything = only_first_migrations(monkeypatch, 1)
    with store.connect(path):
        pass
    broken = (99, "broken", "CREATE TABLE half_done (x INTEGER);\nSELECT * FROM no_such_table;")
    monkeypatch.setattr(store, "_migrations", lambda: [everything[0], broken])
    with pytest.raises(duckdb.Error), store.connect(path):
        pass
    con = duckdb.connect(str(path), read_only=True)
    try:
        recorded = [r[0] for r in con.execute("SELECT version FROM schema_version").fetchall()]
        half = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = 'half_done'").fetchone()[0]
    finally:
        con.close()
    assert recorded == [1], f"a failed migration must not be recorded: {recorded}"
    assert half == 0, "a failed migration's earlier statements must be rolled back"


def test_search_vocabulary_is_filled_from_an_existing_index(tmp_path, monkeypatch):
    """0006 adds search_vocab to stores whose index was built before it existed."""
    path = tmp_path / "v5.duckdb"
    everything = only_first_migrations(monkeypatch, 5)
    with store.connect(path) as con:
        con.execute("INSERT INTO search_terms VALUES ('a', 'orders', 3.0), ('a', 'lines', 1.0), "
                    "('b', 'orders', 2.0)")
    monkeypatch.setattr(store, "_migrations", lambda: everything)
    with store.connect(path) as con:
        vocab = sorted(con.execute("SELECT term, len FROM search_vocab").fetchall())
    assert vocab == [("lines", 5), ("orders", 6)], f"each indexed term once, with its length: {vocab}"
