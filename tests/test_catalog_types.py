"""One notion of "same / wider / narrower type", read by the compatibility and schema checks."""

from __future__ import annotations

import pytest

from catalog import contract_diff
from catalog.types import breaks_consumers, compare_logical, compare_physical, satisfies
from checks.compiler import type_problem

PAIRS = [
    ("INT", "INTEGER", "same"),
    ("int4", "INTEGER", "same"),
    ("VARCHAR(10)", "varchar(10)", "same"),
    ("INT", "BIGINT", "wider"),
    ("BIGINT", "INT", "narrower"),
    ("VARCHAR(10)", "VARCHAR(255)", "wider"),
    ("VARCHAR(255)", "VARCHAR(10)", "narrower"),
    ("VARCHAR", "VARCHAR(10)", "narrower"),
    ("VARCHAR(10)", "TEXT", "wider"),
    ("DECIMAL(5,2)", "DECIMAL(12,2)", "wider"),
    ("DECIMAL(12,2)", "DECIMAL(5,2)", "narrower"),
    ("DECIMAL(12,2)", "DECIMAL(12,4)", "narrower"),   # two integer digits fewer
    ("REAL", "DOUBLE", "wider"),
    ("INTEGER", "DECIMAL(12,2)", "wider"),
    ("DOUBLE", "INTEGER", "narrower"),
    ("VARCHAR(20)", "DATE", "different"),
    ("TIMESTAMP", "timestamp", "same"),
]


@pytest.mark.parametrize(("before", "after", "expected"), PAIRS)
def test_physical_type_changes(before, after, expected):
    assert compare_physical(before, after) == expected, f"{before} -> {after} should be {expected}"


def test_logical_type_changes():
    assert compare_logical("integer", "number") == "wider"
    assert compare_logical("number", "integer") == "narrower"
    assert compare_logical("string", "date") == "different"
    assert compare_logical("String", "string") == "same"


def _contract(physical: str) -> str:
    return f"""apiVersion: v3.0.2
kind: DataContract
id: types-test
version: 1.0.0
status: active
schema:
  - name: t
    properties:
      - name: c
        logicalType: {"string" if "CHAR" in physical.upper() else "number"}
        physicalType: {physical}
"""


@pytest.mark.parametrize(("before", "after", "breaking"), [
    ("INT", "INTEGER", False),
    ("VARCHAR(255)", "VARCHAR(10)", True),
    ("DECIMAL(12,2)", "DECIMAL(5,2)", True),
    ("VARCHAR(10)", "VARCHAR(255)", False),
])
def test_compatibility_uses_the_same_notion(before, after, breaking):
    changes = contract_diff.diff(_contract(before), _contract(after)).breaking
    assert (not changes.empty) == breaking, f"{before} -> {after}: breaking should be {breaking}"
    assert breaks_consumers(compare_physical(before, after)) == breaking


def test_schema_check_uses_the_same_families():
    assert satisfies("integer", "INTEGER") and satisfies("number", "BIGINT"), "ints satisfy integer and number"
    assert not satisfies("integer", "DOUBLE")
    expected = {"logical": "integer", "physical": "INT"}
    assert type_problem(expected, "INTEGER", source_kind="parquet") is None, "INT declared, INTEGER stored"
    assert type_problem({"logical": "string", "physical": "VARCHAR(10)"}, "BIGINT", source_kind="parquet")
