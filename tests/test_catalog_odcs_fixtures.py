"""Every official ODCS example and negative test in ../shared/fixtures/odcs, outcome per file.

The rule: valid under the declared apiVersion -> accepted; invalid there but valid under a
newer official schema -> accepted with a warning naming it; anything else -> rejected with
a reason naming the JSON path (or field) of the fault. A rejected file writes nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalog import store
from catalog.ingest import IngestReport, ingest_paths
from tests.conftest import SHARED_FIXTURES

ODCS = SHARED_FIXTURES / "odcs"
NEGATIVE_PREFIX = "bitol-odcs-dev__negative-tests__"
SUFFIX = ".odcs.yaml"

EXAMPLES = [
    "all__full-example", "all__postgresql-adventureworks-contract", "data-types__all-data-types",
    "fundamentals__table-column-description", "quality__column-accuracy",
    "quality__column-completeness", "quality__column-custom", "quality__column-validity",
    "roles__service-and-operational-roles", "schema__all-schema-types", "schema__kafka-schema",
    "schema__kafka-schemaregistry", "schema__table-column", "schema__table-columns-with-partition",
    "server__azure-server", "server__kafka-server", "sla__database-table-sla",
    "stakeholders__basic-four-dpo",
]
# Declare v3.0.2 but use v3.1 features: valid only under the v3.1.0 schema.
V31_FEATURES_UNDER_V302 = {
    "data-types__all-data-types": "schema[0].properties[4].logicalType",
    "quality__column-completeness": "schema[0].properties[0].quality[0]",
    "stakeholders__basic-four-dpo": "team",
}

# negative test -> fragments its rejection reason must contain (JSON path and/or field).
NEGATIVE = {
    "additional-unknown-property": ["(root)", "unknownRootField"],
    "enum-duplicate-values": ["schema[0].properties[0].enum", "non-unique"],
    "enum-empty": ["schema[0].properties[0].enum", "non-empty"],
    "enum-missing-value": ["schema[0].properties[0].enum[0]", "'value' is a required property"],
    "invalid-api-version": ["apiVersion", "unsupported apiVersion", "v4.0.0"],
    "invalid-kind": ["kind", "'DataModel'"],
    "invalid-quality-dimension": ["schema[0].properties[0].quality[0].dimension", "'validity'"],
    "invalid-quality-metric": ["schema[0].properties[0].quality[0].metric", "'invalidMetric'"],
    "invalid-quality-type": ["schema[0].properties[0].quality[0].type", "'unknown'"],
    "map-missing-block": ["schema[0].properties[0]", "'map' is a required property"],
    "map-missing-key": ["schema[0].properties[0].map", "'key' is a required property"],
    "map-missing-value": ["schema[0].properties[0].map", "'value' is a required property"],
    "missing-required-fields": ["(root)", "'id' is a required property"],
    "quality-custom-missing-implementation": ["schema[0].properties[0].quality[0]", "'implementation'"],
    "quality-element-field": ["schema[0].properties[0].quality[0]", "'element'"],
    "quality-library-missing-metric": ["schema[0].properties[0].quality[0]", "'metric' is a required property"],
    "quality-multiple-operators": ["schema[0].properties[0].quality[0]", "'mustNotBe'"],
    "quality-mustbebetween-wrong-size": ["schema[0].quality[0].mustBeBetween", "too short"],
    "quality-sql-missing-query": ["schema[0].properties[0].quality[0]", "'query' is a required property"],
    "relationship-property-level-with-from": ["schema[0].properties[0].relationships[0]", "'from'"],
    "relationship-schema-level-missing-from-to": ["schema[0].relationships[0]", "'from' is a required property"],
    "schema-property-invalid-logicaltype": ["schema[0].properties[0].logicalType", "'binary'"],
    "schema-property-missing-name": ["schema[0].properties[0]", "'name' is a required property"],
    "server-invalid-type": ["servers[0].type", "'mongodb'"],
    "server-missing-conditional-fields": ["servers[0]", "'schema' is a required property"],
    "server-missing-required-fields": ["servers[0]", "'server' is a required property"],
    "sla-missing-required-value": ["slaProperties[0]", "'value' is a required property"],
    "synonym-missing-term": ["schema[0].properties[0].synonyms[0]", "'synonym' is a required property"],
}


def example(name: str) -> Path:
    return ODCS / f"bitol-odcs__{name}{SUFFIX}"


def negative(name: str) -> Path:
    return ODCS / f"{NEGATIVE_PREFIX}{name}{SUFFIX}"


def table_counts(con) -> dict[str, int]:
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main' ORDER BY 1").fetchall()]
    return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608


@pytest.fixture(scope="module")
def all_files(tmp_path_factory, _migrated_template) -> tuple[dict, IngestReport]:
    """Every file of ../shared/fixtures/odcs (not schema/) ingested, each into its own store:
    these tests are about each file's validation. (In one store, two examples that join
    `my_quantum` without its domain or owners are refused by the takeover rule; see
    tests/test_catalog_ingest_takeover.py.)

    Yields the stored contract rows by source file and the combined report."""
    if not ODCS.is_dir():
        pytest.skip(f"official ODCS fixtures not found at {ODCS} (../shared beside the project)")
    folder = tmp_path_factory.mktemp("odcs")
    files = sorted(p for p in ODCS.iterdir() if p.is_file())
    report, stored = IngestReport(), {}
    for index, path in enumerate(files):
        db = folder / f"catalog-{index}.duckdb"
        shutil.copyfile(_migrated_template, db)
        with store.connect(db) as con:
            report.extend(ingest_paths(con, [path]))
            stored |= {r[0]: r[1:] for r in con.execute(
                "SELECT source_file, api_version, validated_against FROM contracts").fetchall()}
    return stored, report


def outcome(report: IngestReport, path: Path) -> tuple[list, list, list]:
    key = str(path)
    return ([a for a in report.accepted if a.file == key],
            [r for r in report.rejected if r.file == key],
            [w for w in report.warnings if w.file == key])


def test_the_fixture_set_is_the_one_these_tests_describe(shared_fixtures):
    names = {p.name for p in (shared_fixtures / "odcs").iterdir() if p.is_file()}
    expected = {example(n).name for n in EXAMPLES} | {negative(n).name for n in NEGATIVE}
    assert names == expected, (f"fixture files changed: new {sorted(names - expected)}, "
                               f"missing {sorted(expected - names)} — update the expectations")


def test_every_file_has_exactly_one_outcome(all_files):
    _, report = all_files
    files = [a.file for a in report.accepted] + [r.file for r in report.rejected]
    assert len(files) == len(set(files)) == len(EXAMPLES) + len(NEGATIVE), (
        f"each file must be accepted or rejected exactly once; got {len(files)} outcomes "
        f"for {len(set(files))} files")
    assert len(report.accepted) == 18 and len(report.rejected) == 28, (
        f"18 official examples accepted and 28 negative tests rejected, got "
        f"{len(report.accepted)} accepted / {len(report.rejected)} rejected: "
        f"{[(r.file, r.reason) for r in report.rejected if NEGATIVE_PREFIX not in r.file]}")


@pytest.mark.parametrize("name", EXAMPLES)
def test_official_example_is_accepted(all_files, name):
    stored, report = all_files
    accepted, rejected, warnings = outcome(report, example(name))
    assert not rejected, f"official example {name} rejected: {rejected[0].reason if rejected else ''}"
    assert len(accepted) == 1, f"official example {name} must be accepted once, got {accepted}"
    assert accepted[0].id and not accepted[0].unchanged, f"{name}: accepted without a contract id or as unchanged"
    if name in V31_FEATURES_UNDER_V302:
        assert len(warnings) == 1, f"{name} declares v3.0.2 but uses v3.1 features: one warning expected, got {warnings}"
        message = warnings[0].message
        for fragment in ("v3.1.0", "declares apiVersion v3.0.2", V31_FEATURES_UNDER_V302[name]):
            assert fragment in message, f"{name}: warning should contain {fragment!r}: {message}"
    else:
        assert not warnings, f"{name} is valid under its declared version; no warning expected: {warnings}"
    row = stored.get(str(example(name)))
    assert row is not None, f"{name}: accepted but no contract row was stored"
    expected = "v3.1.0" if name in V31_FEATURES_UNDER_V302 else row[0]
    assert row[1] == expected, f"{name}: stored validated_against {row[1]}, expected {expected}"


def test_only_the_three_v31_feature_examples_warn(all_files):
    _, report = all_files
    warned = sorted(Path(w.file).name for w in report.warnings)
    assert warned == sorted(example(n).name for n in V31_FEATURES_UNDER_V302), (
        f"exactly the three v3.0.2-declared examples with v3.1 features should warn, got {warned}")


@pytest.mark.parametrize("name", sorted(NEGATIVE))
def test_negative_test_is_rejected_naming_the_fault(all_files, name):
    _, report = all_files
    accepted, rejected, _ = outcome(report, negative(name))
    assert not accepted, f"negative test {name} was accepted"
    assert len(rejected) == 1, f"negative test {name} must be rejected once, got {rejected}"
    reason = rejected[0].reason
    for fragment in NEGATIVE[name]:
        assert fragment in reason, f"{name}: reason should name {fragment!r}; got: {reason}"
    assert "internal error" not in reason, f"{name}: rejected by a crash, not by the rule: {reason}"


def test_rejected_files_leave_no_trace(all_files):
    stored, report = all_files
    sources = set(stored)
    rejected = {r.file for r in report.rejected}
    assert not sources & rejected, f"rejected files have contract rows: {sorted(sources & rejected)}"


def test_each_rejected_file_writes_nothing(shared_fixtures, tmp_db):
    with store.connect(tmp_db) as con:
        first = ingest_paths(con, [example("schema__table-column"), example("server__azure-server")])
        assert len(first.accepted) == 2, f"setup: two good contracts expected, got {first.rejected}"
        before = table_counts(con)
        for name in sorted(NEGATIVE):
            report = ingest_paths(con, [negative(name)])
            assert report.rejected and not report.accepted, f"{name} should be rejected"
            after = table_counts(con)
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
            assert not changed, f"rejected {name} changed row counts (before, after): {changed}"


def test_mixed_folder_keeps_the_good_and_reports_the_bad(shared_fixtures, tmp_path, tmp_db):
    folder = tmp_path / "incoming"
    (folder / "nested").mkdir(parents=True)
    good = {"schema__table-column": "53581432-6c55-4ba2-a65f-72344a91553b",
            "schema__kafka-schema": "orders",
            "server__kafka-server": "abc123"}
    bad = ["invalid-api-version", "schema-property-invalid-logicaltype", "server-invalid-type"]
    for i, name in enumerate(good):
        shutil.copy(example(name), (folder if i % 2 else folder / "nested") / example(name).name)
    for name in bad:
        shutil.copy(negative(name), folder / negative(name).name)
    (folder / "README.txt").write_text("not ingestible: folders contribute .yaml/.yml/.json only")

    with store.connect(tmp_db) as con:
        report = ingest_paths(con, [folder])
        ids = {r[0] for r in con.execute("SELECT contract_id FROM contracts").fetchall()}
        column_owners = {r[0] for r in con.execute("SELECT DISTINCT contract_id FROM columns").fetchall()}

    assert sorted(a.id for a in report.accepted) == sorted(good.values()), (
        f"the good files must be kept: {report.to_json()}")
    assert ids == set(good.values()), f"contracts stored {ids}, expected only the good ones"
    assert column_owners <= ids and column_owners, f"columns must belong to stored contracts: {column_owners}"
    rejected = {Path(r.file).name: r.reason for r in report.rejected}
    assert set(rejected) == {negative(n).name for n in bad}, f"bad files must be reported: {rejected}"
    assert "unsupported apiVersion" in rejected[negative("invalid-api-version").name], rejected
    assert not any("README" in f for f in rejected), "a folder's non-contract files are skipped, not rejected"
