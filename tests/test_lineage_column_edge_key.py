"""Column edges are keyed by one value (rows.column_edge_key): migration 0011 gives the edges
of an older store the key Python computes, so later events upsert them instead of adding twins;
the key tells apart names that only differ in where one ends."""

from __future__ import annotations

from datetime import datetime

from catalog import store
from catalog.openlineage.per_event import insert_values
from catalog.openlineage.rows import COLUMN_EDGE_CONFLICT, column_edge_key

EDGES = [("postgres://db:5432", "dw.marts.orders", "total", "postgres://db:5432", "dw.sales.lines", "amount"),
         ("s3://bücket", "données/ventes", "", "s3://bücket", "données/lignes", "montant:1"),
         ("ns", "a:", "b", "ns", "c", "d"),
         ("ns", "a", ":b", "ns", "c", "d")]


def test_keys_tell_apart_names_that_differ_only_in_where_they_end():
    keys = {column_edge_key(*edge) for edge in EDGES}
    assert len(keys) == len(EDGES), "('a:', 'b') and ('a', ':b') must not share a key"
    assert column_edge_key(*EDGES[0]) == column_edge_key(*EDGES[0]), "the key is a function of the names"


def test_migration_0011_keys_existing_edges_as_python_does(tmp_path, monkeypatch):
    everything = store._migrations()
    monkeypatch.setattr(store, "_migrations", lambda: tuple(m for m in everything if m[0] < 11))
    path = tmp_path / "v10.duckdb"
    seen = datetime(2026, 11, 1)
    with store.connect(path) as con:  # edges as the six-column primary key stored them
        for edge in EDGES:
            con.execute("INSERT INTO lineage_column_edges VALUES (?, ?, ?, ?, ?, ?, 'DIRECT', NULL, false, "
                        "'etl', 'job', ?)", [*edge, seen])
    monkeypatch.setattr(store, "_migrations", lambda: everything)
    with store.connect(path) as con:
        stored = {tuple(row[:6]): bytes(row[6]) for row in con.execute(
            "SELECT output_namespace, output_name, output_field, input_namespace, input_name, input_field, "
            "edge_key FROM lineage_column_edges").fetchall()}
        assert stored == {edge: column_edge_key(*edge) for edge in EDGES}, "0011 keys each edge as Python does"
        later = datetime(2026, 12, 1)
        insert_values(con, "INSERT INTO lineage_column_edges VALUES",
                      [[*EDGES[1], "INDIRECT", None, False, "etl", "job", later, column_edge_key(*EDGES[1])]],
                      COLUMN_EDGE_CONFLICT)
        rows = con.execute("SELECT transformation, last_seen FROM lineage_column_edges WHERE output_name = ?",
                           [EDGES[1][1]]).fetchall()
    assert rows == [("INDIRECT", later)], f"an edge stored before 0011 is updated, not doubled: {rows}"


def test_ingested_edges_carry_the_key_of_their_names(tmp_path):
    """The key made while an event is flattened (output part once per field) is column_edge_key."""
    import json

    from catalog import openlineage
    from sample_data import synthetic

    event = next(e for e in synthetic.lineage_events(2) if e["outputs"][0].get("facets"))
    lineage = event["outputs"][0]["facets"]["columnLineage"]
    lineage["fields"]["prix_öre"] = {"inputFields": [{"namespace": "ns", "name": "tâble", "field": "ç:1"}]}
    lineage["dataset"] = [{"namespace": "ns", "name": "filter_table", "field": "day"}]
    with store.connect(tmp_path / "m.duckdb") as con:
        report = openlineage.ingest_text(con, json.dumps(event), source="e.json", actor="tester")
        rows = con.execute("SELECT output_namespace, output_name, output_field, input_namespace, input_name, "
                           "input_field, edge_key FROM lineage_column_edges").fetchall()
    assert not report.rejected, report.rejected
    assert len(rows) == 14, f"twelve generated edges, one added field, one dataset-wide: {len(rows)}"
    assert all(bytes(r[6]) == column_edge_key(*r[:6]) for r in rows), "each edge's key is column_edge_key"
