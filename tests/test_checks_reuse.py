"""Stored measurements reused when the data file and the contract text are unchanged: the
same answers as measuring again, marked with the run that measured them; never reused for
freshness, changed data, a changed contract, or when the caller asks to measure again."""

from __future__ import annotations

import os

import pytest

from catalog.ingest import ingest_paths
from catalog.store import connect
from checks import cli, reuse, runner, stored_results
from tests.test_checks_engine_fixtures import NOW, build_mesh, by_id, orders_frame


@pytest.fixture
def shop(tmp_path):
    return build_mesh(tmp_path, {"shop": "shop.yaml"}, {"orders": orders_frame()}), tmp_path


def _answers(run) -> dict:
    return {r.check_id: (r.status, r.measured) for r in run.results}


def _reused(run) -> dict:
    return {r.check_id: r.diagnostics["reused_from"]["run_id"] for r in run.results if reuse.was_reused(r)}


def test_checks_unchanged_data_reuses_data_only_results(shop):
    db, _ = shop
    first = runner.run_checks(db, triggered_by="tester", now=NOW)
    second = runner.run_checks(db, triggered_by="tester", now=NOW)
    assert _answers(second) == _answers(first), "a reused result answers what measuring again answered"
    reused = _reused(second)
    kinds = {r.kind for r in second.results if r.check_id in reused}
    assert {"schema", "quality", "pii"} <= kinds, f"data checks and the PII scan are reused: {kinds}"
    assert set(reused.values()) == {first.run_id}, "each reused result names the run that measured it"
    fresh = [r for r in second.results if r.kind == "freshness"]
    assert fresh and not any(reuse.was_reused(r) for r in fresh), "freshness depends on the clock: always measured"
    assert not any(reuse.was_reused(r) for r in second.results if r.kind == "policy"), "policies read the catalog"
    sample = by_id(second.results)["shop-orders/orders/email/quality/email_format"]
    assert first.run_id in sample.reason and sample.diagnostics.get("sample"), \
        f"the reason says it was reused, the failing-row sample is kept: {sample.reason}"
    third = runner.run_checks(db, triggered_by="tester", now=NOW)
    assert set(_reused(third).values()) == {first.run_id}, "a reuse of a reuse still names the measuring run"
    assert by_id(third.results)[sample.check_id].reason == sample.reason, "the reason does not grow"
    with connect(db, read_only=True) as con:
        stored = stored_results.result_detail(con, third.run_id, sample.check_id)
    assert stored["diagnostics"]["reused_from"]["run_id"] == first.run_id, "the store keeps the marker"


def test_checks_changed_data_is_measured_again(shop):
    db, folder = shop
    first = runner.run_checks(db, triggered_by="tester", now=NOW)
    data = folder / "data" / "orders.parquet"
    stat = os.stat(data)
    orders_frame(clean=True).to_parquet(data, index=False)
    os.utime(data, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same mtime: the footer hash tells
    second = runner.run_checks(db, triggered_by="tester", now=NOW)
    assert not _reused(second), f"nothing is reused from other data: {_reused(second)}"
    pk = "shop-orders/orders/order_id/primary_key"
    assert by_id(first.results)[pk].status == "failed" and by_id(second.results)[pk].status == "passed"


def test_checks_changed_contract_is_measured_again(shop):
    db, folder = shop
    runner.run_checks(db, triggered_by="tester", now=NOW)
    contract = folder / "shop.yaml"
    contract.write_text(contract.read_text().replace("version: 2.0.0", "version: 2.0.1", 1))
    with connect(db) as con:
        report = ingest_paths(con, [contract], actor="tests")
    assert not report.rejected, report.rejected
    second = runner.run_checks(db, triggered_by="tester", now=NOW)
    assert not _reused(second), "a new contract revision measures everything again"


def test_checks_no_reuse_measures_everything(shop, capsys):
    db, _ = shop
    runner.run_checks(db, triggered_by="tester", now=NOW)
    again = runner.run_checks(db, triggered_by="tester", now=NOW, reuse_unchanged=False)
    assert not _reused(again), "reuse_unchanged=False measures again"
    assert cli.main(["run", "--all", "--db", str(db), "--no-reuse"]) == 1
    assert "reused" not in capsys.readouterr().out
    assert cli.main(["run", "--all", "--db", str(db)]) == 1
    out = capsys.readouterr().out
    assert "of them reused from run" in out, f"the CLI says how many results were reused and from where: {out}"
