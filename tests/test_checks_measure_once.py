"""Work a run saves without changing an answer: one query for checks that ask the same
question, failing rows located in the counting pass, null counts and proven ranges from the
Parquet footer, and the PII sample of a large Parquet file read in runs of rows. Every
shortcut is compared with the plain scan it replaces."""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from catalog import odcs
from catalog.locations import Location
from checks import compiler, measure, runner
from checks.specs import contract_specs
from tests.test_checks_engine_fixtures import NOW, by_id

CONTRACT = """
apiVersion: v3.1.0
kind: DataContract
id: t.orders
name: Orders
version: 1.0.0
status: active
schema:
  - name: orders
    properties:
      - name: order_id
        logicalType: integer
        primaryKey: true
        quality:
          - metric: duplicateValues
            mustBe: 0
      - name: email
        logicalType: string
        required: true
        quality:
          - metric: invalidValues
            arguments: {pattern: '^[a-z]+@[a-z]+\\.com$'}
            mustBe: 0
      - name: quantity
        logicalType: integer
        logicalTypeOptions: {minimum: 0, maximum: 100}
      - name: price
        logicalType: number
        logicalTypeOptions: {minimum: 0}
"""


def _specs():
    specs = contract_specs(odcs.parse(odcs.load_yaml(CONTRACT)), product_id="p")
    return [s for s in specs if s.metric in compiler.DATA_METRICS and not s.problem]


def _frame(*, duplicate: bool, bad_quantity: bool) -> pd.DataFrame:
    rows = 5000
    frame = pd.DataFrame({
        "order_id": list(range(rows)),
        "email": [f"user{'abcdefghij'[i % 10]}@shop.com" for i in range(rows)],
        "quantity": [i % 50 for i in range(rows)],
        "price": [float(i % 70) for i in range(rows)],
    })
    frame.loc[[10, 2500, 4990], "email"] = ["not mail", None, "also not"]
    if duplicate:
        frame.loc[3000, "order_id"] = 7
    if bad_quantity:
        frame.loc[4000, "quantity"] = 500
    return frame


def _write(tmp_path, frame: pd.DataFrame, *, statistics: bool = True, name: str = "orders.parquet"):
    path = tmp_path / name
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, row_group_size=1000,
                   write_statistics=statistics)
    return path


def _run(path, *, plan=None) -> dict:
    target = measure.DatasetTarget("p", "orders", Location("parquet", str(path), None), {"email"})
    return by_id(measure.run_dataset(_specs(), target, plan=plan, now=NOW))


def _verdicts(results: dict) -> dict:
    return {cid: (r.status, r.measured) for cid, r in results.items()}


def test_checks_primary_key_and_duplicate_values_share_one_measurement(tmp_path):
    results = _run(_write(tmp_path, _frame(duplicate=True, bad_quantity=False)))
    pk = results["p/orders/order_id/primary_key"]
    rule = results["p/orders/order_id/quality/duplicateValues"]
    assert (pk.status, pk.measured) == ("failed", 1), f"one duplicated key: {pk.reason}"
    assert (rule.status, rule.measured) == (pk.status, pk.measured), "the same question has the same answer"
    assert rule.diagnostics.get("measured_with") == pk.check_id, \
        f"the second check names the check whose query measured it: {rule.diagnostics}"
    assert rule.sql == pk.sql, "both report the query that ran"
    assert [row["order_id"] for row in rule.diagnostics["sample"]] == [7, 7], "the sample shows both rows"


def test_checks_sample_located_in_the_counting_pass_matches_a_plain_scan(tmp_path):
    path = _write(tmp_path, _frame(duplicate=False, bad_quantity=False))
    results = _run(path)
    regex = results["p/orders/email/quality/invalidValues"]
    assert regex.measured == 2 and "file_row_number" in regex.sql, \
        f"the regex is counted with the failing rows' positions in one pass: {regex.sql}"
    with duckdb.connect() as con:
        expected = con.execute(f"SELECT order_id FROM read_parquet('{path}') WHERE email IS NOT NULL AND "
                               "NOT regexp_matches(email, '^[a-z]+@[a-z]+\\.com$') ORDER BY order_id").fetchall()
    assert [row["order_id"] for row in regex.diagnostics["sample"]] == [r[0] for r in expected], \
        f"the sample fetched by position holds exactly the failing rows: {regex.diagnostics['sample']}"
    assert all(row["email"] != "not mail" for row in regex.diagnostics["sample"]), "declared PII stays masked"


def test_checks_footer_statistics_answer_only_what_they_prove(tmp_path):
    with_stats = _run(_write(tmp_path, _frame(duplicate=False, bad_quantity=True)))
    without = _run(_write(tmp_path, _frame(duplicate=False, bad_quantity=True), statistics=False, name="plain.parquet"))
    assert _verdicts(with_stats) == _verdicts(without), "statistics never change an answer"
    nulls = with_stats["p/orders/email/not_null"]
    assert nulls.measured == 1 and "parquet_metadata" in nulls.sql, f"null count from the footer: {nulls.sql}"
    assert "parquet_metadata" not in without["p/orders/email/not_null"].sql, "no statistics: the rows are scanned"
    quantity = with_stats["p/orders/quantity/range"]
    assert quantity.measured == 1 and "parquet_metadata" not in quantity.sql, \
        "a max out of bounds proves nothing about how many rows are out: scanned"
    price = with_stats["p/orders/price/range"]
    assert price.status == "passed" and "parquet_metadata" not in price.sql, \
        "float statistics leave NaN out: a float range is always scanned"
    clean = _run(_write(tmp_path, _frame(duplicate=False, bad_quantity=False), name="clean.parquet"))
    proven = clean["p/orders/quantity/range"]
    assert (proven.status, proven.measured) == ("passed", 0) and "parquet_metadata" in proven.sql, \
        f"min and max inside the bounds prove an integer range passed: {proven.sql}"


def test_checks_shortcuts_agree_with_every_plan(tmp_path):
    path = _write(tmp_path, _frame(duplicate=True, bad_quantity=True))
    reference = _verdicts(_run(path, plan="single_pass"))
    for plan in ("per_check", "materialise"):
        assert _verdicts(_run(path, plan=plan)) == reference, f"plan {plan} must measure what single_pass does"


def test_checks_pii_sample_of_a_large_parquet_file_reads_runs_of_rows(tmp_path, monkeypatch):
    frame = pd.DataFrame({"row": range(30_000), "email": [f"u{i}@x.com" for i in range(30_000)]})
    path = _write(tmp_path, frame)
    location = Location("parquet", str(path), None)
    monkeypatch.setattr(runner, "CLUSTER_SAMPLE_FROM", 10_000)
    first, again = runner.sample_rows(location), runner.sample_rows(location)
    assert len(first["row"]) == runner.PII_SAMPLE_ROWS, len(first["row"])
    assert first == again, "the sample is reproducible"
    assert list(first) == ["row", "email"], "the sample has the data's columns only"
    blocks = {r // 1000 for r in first["row"]}
    assert len(blocks) > 5, f"runs of rows spread over the file, not its head: row groups {sorted(blocks)}"
    monkeypatch.setattr(runner, "CLUSTER_SAMPLE_FROM", 100_000)
    reservoir = runner.sample_rows(location)
    assert len(reservoir["email"]) == runner.PII_SAMPLE_ROWS, "small files keep the reservoir"
    assert reservoir == runner.sample_rows(location), "the reservoir is reproducible too (taken on one thread)"
    assert reservoir != first, "and it is the reservoir, not the runs of rows"
