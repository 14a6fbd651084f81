"""Contract -> check specs, threshold operators, and contract compatibility."""

from __future__ import annotations

import copy

import pytest

from catalog import odcs
from checks import compat
from checks.specs import contract_specs, describe_threshold, duration_seconds, passes
from tests.test_checks_engine_fixtures import FIXTURES


def _model(doc: dict):
    return odcs.parse(doc)


def _shop_doc() -> dict:
    return odcs.load_yaml((FIXTURES / "shop.yaml").read_text())


def _specs(doc: dict, previous: dict | None = None):
    return contract_specs(_model(doc), product_id="shop-orders",
                          previous=_model(previous) if previous else None)


# --- operators -------------------------------------------------------------------------------

@pytest.mark.parametrize(("operator", "threshold", "passing", "failing"), [
    ("mustBe", 0, 0, 1),
    ("mustNotBe", 0, 3, 0),
    ("mustBeGreaterThan", 10, 11, 10),
    ("mustBeGreaterOrEqualTo", 10, 10, 9),
    ("mustBeLessThan", 5, 4.99, 5),
    ("mustBeLessOrEqualTo", 5, 5, 5.01),
    ("mustBeBetween", (1, 9), 9, 10),
    ("mustBeBetween", (1, 9), 1, 0.5),
    ("mustNotBeBetween", (1, 9), 10, 5),
    ("mustNotBeBetween", (1, 9), 0, 1),
])
def test_checks_operators_follow_odcs_semantics(operator, threshold, passing, failing):
    assert passes(operator, threshold, passing), f"{passing} should satisfy {operator} {threshold}"
    assert not passes(operator, threshold, failing), f"{failing} should break {operator} {threshold}"


def test_checks_operators_treat_missing_measure_as_failing():
    assert not passes("mustBeLessThan", 1, None), "a measure that could not be taken never passes a bound"
    assert not passes("mustBeBetween", (0, 1), float("nan")), "NaN is not between anything"
    assert passes("mustBe", "ok", "ok"), "mustBe compares non-numbers by equality"


def test_checks_thresholds_read_like_the_contract():
    assert describe_threshold("mustBeLessOrEqualTo", 5, "percent") == "≤ 5 %"
    assert describe_threshold("mustBeBetween", (1, 1000), "rows") == "between 1 and 1000 rows"
    assert describe_threshold(None, None) == ""


@pytest.mark.parametrize(("value", "unit", "seconds"), [
    (4, "d", 345600), (1, "day", 86400), (2, "days", 172800), (3, "h", 10800), (1, "hr", 3600),
    (12, "hours", 43200), (30, "m", 1800), (5, "min", 300), (1, "y", 31557600),
])
def test_checks_sla_units(value, unit, seconds):
    assert duration_seconds(value, unit) == seconds, f"{value} {unit} should be {seconds} s"


def test_checks_sla_unit_unknown_is_an_error_with_reason():
    with pytest.raises(ValueError, match="unknown time unit"):
        duration_seconds(1, "fortnight")


# --- specs ------------------------------------------------------------------------------------

def test_checks_specs_cover_every_kind_of_the_contract():
    specs = {s.check_id: s for s in _specs(_shop_doc())}
    expected = {
        "shop-orders/orders/order_id/schema": "schema",
        "shop-orders/orders/order_id/not_null": "not_null",
        "shop-orders/orders/order_id/primary_key": "primary_key",
        "shop-orders/orders/order_id/pattern": "pattern",
        "shop-orders/orders/email/not_null": "not_null",
        "shop-orders/orders/email/quality/email_format": "invalidValues",
        "shop-orders/orders/status/quality/status_valid": "invalidValues",
        "shop-orders/orders/status/quality/status_missing": "missingValues",
        "shop-orders/orders/amount/range": "range",
        "shop-orders/orders/amount/quality/amount_nulls": "nullValues",
        "shop-orders/orders/code/length": "length",
        "shop-orders/orders/quality/orders_rows": "rowCount",
        "shop-orders/orders/quality/orders_no_dup_email_status": "duplicateValues",
        "shop-orders/orders/quality/big_orders": "sql",
        "shop-orders/orders/quality/described_only": "text",
        "shop-orders/orders/ordered_at/freshness/latency": "latency",
        "shop-orders/orders/ordered_at/freshness/frequency": "frequency",
    }
    for check_id, metric in expected.items():
        assert check_id in specs, f"missing spec {check_id}; have {sorted(specs)}"
        assert specs[check_id].metric == metric, f"{check_id} should measure {metric}"
    assert "shop-orders/orders/order_id/unique" not in specs, \
        "a single-column primary key's uniqueness is checked once, as primary_key"
    assert not any("retention" in cid for cid in specs), "retention is not a freshness SLA"
    assert len(specs) == len(set(specs)), "check ids are unique"


def test_checks_specs_carry_thresholds_units_and_severity():
    specs = {s.check_id: s for s in _specs(_shop_doc())}
    status_valid = specs["shop-orders/orders/status/quality/status_valid"]
    assert (status_valid.operator, status_valid.threshold, status_valid.unit) == ("mustBeLessOrEqualTo", 10, "percent")
    assert status_valid.valid_values == ("new", "paid", "shipped")
    amount = specs["shop-orders/orders/amount/quality/amount_nulls"]
    assert amount.failing_status == "warning", "severity warning turns a failure into a warning"
    rows = specs["shop-orders/orders/quality/orders_rows"]
    assert rows.threshold == (1, 1000) and rows.operator == "mustBeBetween"
    dup = specs["shop-orders/orders/quality/orders_no_dup_email_status"]
    assert dup.columns == ("email", "status"), "schema-level duplicateValues takes arguments.properties"
    latency = specs["shop-orders/orders/ordered_at/freshness/latency"]
    assert latency.arguments["max_age_seconds"] == 2 * 86400
    assert specs["shop-orders/orders/ordered_at/freshness/frequency"].arguments["max_age_seconds"] == 12 * 3600


def test_checks_specs_default_operator_for_v30_style_rules():
    doc = _shop_doc()
    doc["schema"][0]["properties"][1]["quality"] = [{"rule": "nullCheck"}]
    spec = next(s for s in _specs(doc) if s.check_id.startswith("shop-orders/orders/email/quality"))
    assert (spec.metric, spec.operator, spec.threshold) == ("nullValues", "mustBe", 0), \
        "the deprecated rule name maps to the v3.1 metric with 'no nulls' as the default"


def test_checks_specs_keep_unrunnable_rules_as_problems():
    doc = _shop_doc()
    props = doc["schema"][0]["properties"]
    props[0]["quality"] = [{"metric": "nullValues", "mustBe": 0, "mustBeLessThan": 3}]
    props[2]["quality"] = [{"metric": "invalidValues", "mustBe": 0}]
    doc["slaProperties"] = [{"property": "latency", "value": 1, "unit": "fortnight", "element": "orders.ordered_at"},
                            {"property": "frequency", "value": 1, "unit": "d", "element": "nowhere.at"},
                            {"property": "latency", "value": 1, "unit": "d"}]
    problems = {s.check_id: s.problem for s in _specs(doc) if s.problem}
    assert any("several operators" in p for p in problems.values()), problems
    assert any("validValues or arguments.pattern" in p for p in problems.values()), problems
    assert any("unknown time unit" in p for p in problems.values()), problems
    assert any("names no dataset.column" in p for p in problems.values()), problems
    assert any("slaDefaultElement" in p for p in problems.values()), problems


def test_checks_specs_freshness_uses_sla_default_element():
    doc = _shop_doc()
    doc["slaDefaultElement"] = "orders.ordered_at"
    doc["slaProperties"] = [{"property": "latency", "value": 3, "unit": "h"}]
    spec = next(s for s in _specs(doc) if s.kind == "freshness")
    assert (spec.dataset, spec.columns, spec.problem) == ("orders", ("ordered_at",), None)


# --- compatibility ------------------------------------------------------------------------------

def _bumped(doc: dict, version: str) -> dict:
    new = copy.deepcopy(doc)
    new["version"] = version
    return new


def test_checks_compat_finds_each_breaking_change():
    old = _shop_doc()
    new = _bumped(old, "2.1.0")
    props = new["schema"][0]["properties"]
    props[:] = [p for p in props if p["name"] != "code"]                 # removed
    next(p for p in props if p["name"] == "amount")["logicalType"] = "string"    # type change
    next(p for p in props if p["name"] == "status")["required"] = True           # required added
    next(p for p in props if p["name"] == "email")["unique"] = True              # unique added
    next(p for p in props if p["name"] == "ordered_at")["primaryKey"] = True     # pk added
    props.append({"name": "note", "logicalType": "string"})                      # added: fine
    changes = compat.breaking_changes(_model(old), _model(new))
    kinds = {(c["kind"], c["column"]) for c in changes}
    assert kinds == {("column_removed", "code"), ("type_changed", "amount"), ("required_added", "status"),
                     ("unique_added", "email"), ("primary_key_added", "ordered_at")}, kinds
    amount = next(c for c in changes if c["kind"] == "type_changed")
    assert amount["before"].startswith("number") and amount["after"].startswith("string")
    assert all(set(c) == {"kind", "dataset", "column", "before", "after"} for c in changes)


def test_checks_compat_ignores_non_breaking_edits():
    old = _shop_doc()
    new = _bumped(old, "2.0.1")
    new["schema"][0]["properties"][1]["description"] = "changed"
    new["schema"][0]["properties"][0]["physicalType"] = "varchar"  # same type in other case
    # (VARCHAR -> VARCHAR(20) narrows: catalog.types, tested in test_catalog_types)
    new["schema"][0]["properties"][2]["required"] = False
    assert compat.breaking_changes(_model(old), _model(new)) == []


def test_checks_compat_dataset_removed():
    old = _shop_doc()
    new = _bumped(old, "3.0.0")
    new["schema"] = []
    assert [c["kind"] for c in compat.breaking_changes(_model(old), _model(new))] == ["dataset_removed"]


@pytest.mark.parametrize(("old", "new", "bump"), [
    ("1.0.0", "2.0.0", "major"), ("1.0.0", "1.1.0", "minor"), ("1.0.0", "1.0.1", "patch"),
    ("1.0.0", "1.0.0", "none"), ("2.0.0", "1.9.0", "downgrade"), ("v1", "v2", "major"),
    ("alpha", "beta", "unknown"),
])
def test_checks_compat_version_bump(old, new, bump):
    assert compat.version_bump(old, new) == bump


def test_checks_compat_verdict_depends_on_the_major_bump():
    change = [{"kind": "column_removed", "dataset": "orders", "column": "code", "before": "string", "after": None}]
    status, reason = compat.judge(change, bump="minor", old_version="1.0.0", new_version="1.1.0")
    assert status == "failed" and "without a major version bump" in reason and "orders.code removed" in reason
    status, reason = compat.judge(change, bump="major", old_version="1.0.0", new_version="2.0.0")
    assert status == "warning" and "major version bumped" in reason
    assert compat.judge([], bump="patch", old_version="1", new_version="1.0.1")[0] == "passed"


def test_checks_compat_spec_from_previous_revision():
    old = _shop_doc()
    new = _bumped(old, "2.1.0")
    new["schema"][0]["properties"] = [p for p in new["schema"][0]["properties"] if p["name"] != "code"]
    spec = next(s for s in _specs(new, previous=old) if s.kind == "compatibility")
    assert spec.arguments["bump"] == "minor" and len(spec.arguments["changes"]) == 1


def test_checks_specs_nested_rules_are_skipped_not_dropped():
    doc = _shop_doc()
    doc["schema"][0]["properties"].append({
        "name": "address", "logicalType": "object",
        "properties": [{"name": "zip", "logicalType": "string",
                        "quality": [{"id": "zip_nulls", "metric": "nullValues", "mustBe": 0}]}]})
    spec = next(s for s in _specs(doc) if "zip" in s.check_id)
    assert spec.metric == "unsupported" and "nested field address.zip" in spec.arguments["skip"], spec
