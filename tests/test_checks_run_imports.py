"""`python -m checks run --product ID` does its work without the heavy libraries the pages use:
importing pandas (with numpy and pyarrow) cost the process ~0.6 s of CPU, as much as several
of its checks (issue 15, item 0)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from catalog.store import connect
from checks import run_records, runner
from tests.test_checks_engine_fixtures import NOW, build_mesh, orders_frame

PROJECT = Path(__file__).resolve().parents[1]
NOT_IMPORTED = ("pandas", "pyarrow", "numpy", "sqlglot", "jsonschema", "streamlit")

RUN_AND_LIST_MODULES = f"""
import json, sys
from checks import cli
code = cli.main(sys.argv[1:])
print("MODULES " + json.dumps({{"code": code, "loaded": sorted(m for m in {NOT_IMPORTED!r} if m in sys.modules)}}))
"""


def test_checks_run_of_a_product_imports_no_pandas_pyarrow_sqlglot_jsonschema_or_streamlit(tmp_path):
    # The shop data fails checks (failing-row samples are fetched and masked), declares PII
    # (the sample scan runs), has a `type: sql` rule (sandboxed), and the policy pack runs.
    db = build_mesh(tmp_path, {"shop": "shop.yaml"}, {"orders": orders_frame()})
    proc = subprocess.run([sys.executable, "-c", RUN_AND_LIST_MODULES, "run", "--product", "shop-orders",
                           "--db", str(db), "--json", "--as", "ci"], cwd=PROJECT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(PROJECT)}, timeout=300)
    lines = proc.stdout.splitlines()
    marker = [line for line in lines if line.startswith("MODULES ")]
    assert marker, f"the run did not finish: {proc.stderr[-2000:]}"
    report = json.loads(marker[-1].removeprefix("MODULES "))
    results = json.loads("\n".join(line for line in lines if not line.startswith("MODULES ")))
    kinds = {r["kind"] for r in results}
    assert report["code"] == 1 and {"pii", "policy", "quality"} <= kinds, (report, kinds)
    assert any(r["check_id"].endswith("big_orders") and r["status"] != "error" for r in results), \
        "the contract's SQL rule ran in the sandbox"
    assert any((r["diagnostics"] or {}).get("sample") for r in results), "a failing-row sample was fetched"
    assert report["loaded"] == [], f"a product run imported {report['loaded']}: import them where they are needed"


def test_checks_run_results_stored_as_lists_or_as_a_frame_are_the_same(tmp_path, monkeypatch):
    """Small runs are written as list parameters, large ones through pandas: the same rows."""
    db = build_mesh(tmp_path, {"shop": "shop.yaml"}, {"orders": orders_frame()})
    stored = []
    for lists_up_to in (10_000, 0):
        monkeypatch.setattr(run_records, "LISTS_UP_TO", lists_up_to)
        run = runner.run_checks(db, triggered_by="tests", now=NOW, reuse_unchanged=False)
        with connect(db) as con:
            rows = con.execute(
                "SELECT * EXCLUDE (run_id, diagnostics), diagnostics FROM check_results WHERE run_id = ? "
                "ORDER BY check_id", [run.run_id]).fetchall()
        times = [(r.started_at, r.finished_at) for r in sorted(run.results, key=lambda r: r.check_id)]
        assert [(row[-4], row[-3]) for row in rows] == times, "the times are stored as they were taken"
        # Timings differ between two runs; everything else must not.
        stored.append([(*row[:-4], row[-2], {k: v for k, v in json.loads(row[-1]).items() if k != "seconds"})
                       for row in rows])
    lists, frame = stored
    assert len(lists) == len(run.results) > 20 and lists == frame, "both ways store the same values"
