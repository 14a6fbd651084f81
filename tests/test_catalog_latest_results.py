"""One definition of a product's latest results: every reader agrees on the same two runs.

Run A started 10:00 and finished 10:30 (failed); run B started 10:05 and finished 10:06
(passed). The newest run is the one started last (B): it looked at the data later. Before
this was one definition, the overview said passed and the lineage blast radius said failed.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from catalog import lineage, queries
from catalog.ingest import ingest_paths
from catalog.store import connect
from checks import stored_results
from tests.fixtures.lineage import mesh

PRODUCT = "raw-orders"


def _run(con, run_id: str, started: datetime, finished: datetime, status: str) -> None:
    con.execute("INSERT INTO check_runs (run_id, started_at, finished_at, state, status, triggered_by, scope) "
                "VALUES (?, ?, ?, 'complete', ?, 'tests', 'all')", [run_id, started, finished, status])
    con.execute("INSERT INTO check_results (run_id, check_id, kind, product_id, dataset, target, status, "
                "reason, started_at, finished_at) VALUES (?, ?, 'quality', ?, 'orders', ?, ?, 'set by the test', ?, ?)",
                [run_id, f"{PRODUCT}/orders/test", PRODUCT, f"{PRODUCT}.orders", status, started, finished])


@pytest.fixture()
def two_runs(tmp_path):
    path = tmp_path / "mesh.duckdb"
    with connect(path) as con:
        report = ingest_paths(con, [mesh.CONTRACTS, mesh.write_events(tmp_path)])
        assert not report.rejected, report.rejected
        _run(con, "run-a", datetime(2026, 11, 30, 10, 0), datetime(2026, 11, 30, 10, 30), "failed")
        _run(con, "run-b", datetime(2026, 11, 30, 10, 5), datetime(2026, 11, 30, 10, 6), "passed")
    return path


def test_every_reader_takes_the_run_started_last(two_runs):
    with connect(two_runs, read_only=True) as con:
        overview = queries.compliance_by_product(con).set_index("product_id")
        checks_page = stored_results.latest_results(con, PRODUCT)
        statuses = lineage.latest_statuses(con)
        failing = lineage.failing_products(con)
        graph = lineage.build_graph(con)
    radius = lineage.blast_radius(graph, f"product:{PRODUCT}", statuses=statuses)

    assert overview.loc[PRODUCT, "status"] == "passed", "overview: run B started last, and it passed"
    assert set(checks_page["run_id"]) == {"run-b"}, "catalog and checks pages read run B's results"
    assert set(checks_page["status"]) == {"passed"}
    assert statuses[f"product:{PRODUCT}"] == "passed", "lineage colours read the same run as the overview"
    assert statuses[f"dataset:{PRODUCT}.orders"] == "passed"
    assert f"product:{PRODUCT}" not in failing, "a passing product is not a failing source"
    assert radius.status == "passed", "the blast radius names the same status as every page"
