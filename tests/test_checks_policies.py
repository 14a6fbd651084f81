"""Catalog policies: the starter pack over a hand-made catalog, steward policies, and broken
or hostile policies that must end as `error` results without touching files or the store."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalog.ingest import ingest_paths
from catalog.store import connect
from checks import policies
from checks.policies import PolicyError, load_pack, parse_policy, run_policies

FIXTURES = Path(__file__).parent / "fixtures" / "policies"
PRODUCTS = ["campaign-history", "churn-features", "customers", "leads", "ledger",
            "marketing-contacts", "orphan"]

# policy -> product -> expected status; products absent from a row are out of its scope.
EXPECTED = {
    "product-has-owner": {
        "customers": "passed", "leads": "failed", "ledger": "failed", "marketing-contacts": "passed",
        "churn-features": "passed", "campaign-history": "passed", "orphan": "failed"},
    "product-has-contract": {
        "customers": "passed", "leads": "passed", "ledger": "passed", "marketing-contacts": "passed",
        "churn-features": "passed", "campaign-history": "passed", "orphan": "failed"},
    "column-has-classification": {
        "customers": "passed", "leads": "passed", "ledger": "failed", "marketing-contacts": "passed",
        "churn-features": "passed", "campaign-history": "passed", "orphan": "passed"},
    "pii-declares-retention": {"customers": "passed", "marketing-contacts": "failed"},
    "pii-declares-masking": {"customers": "passed", "marketing-contacts": "failed"},
    "model-input-has-description": {"churn-features": "failed", "campaign-history": "passed"},
}


@pytest.fixture(scope="module")
def catalog_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("policies") / "catalog.duckdb"
    with connect(path) as con:
        report = ingest_paths(con, [FIXTURES / "catalog"])
        assert not report.rejected, report.rejected
        # A product row with no contract behind it (e.g. left over after a contract was
        # withdrawn): the ingest path never makes one, so it is written directly.
        con.execute("INSERT INTO products (product_id, name, domain_id, created_at, updated_at) "
                    "VALUES ('orphan', 'Orphan', 'unassigned', now(), now())")
    return path


@pytest.fixture()
def catalog(catalog_file, tmp_path, monkeypatch):
    """A private copy of the ingested catalog (ingesting per test was most of the time)."""
    monkeypatch.delenv(policies.POLICY_DIR_ENV, raising=False)
    copy = tmp_path / "catalog.duckdb"
    shutil.copyfile(catalog_file, copy)
    with connect(copy) as con:
        yield con


def _by_policy(results):
    table: dict[str, dict[str, str]] = {}
    for r in results:
        _, policy_id, product = r.check_id.split(":", 2)
        table.setdefault(policy_id, {})[product] = r.status
    return table


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


# --- the starter pack --------------------------------------------------------------------------

def test_starter_pack_parses():
    pack = load_pack()
    assert sorted(p.id for p in pack) == sorted(EXPECTED)
    for policy in pack:
        assert policy.problem is None, policy.problem
        assert policy.title and policy.description and policy.severity == "failed"
        assert policy.path.parent == policies.BUILTIN_DIR


def test_starter_pack_outcomes_per_product(catalog):
    results = run_policies(catalog)
    assert _by_policy(results) == EXPECTED
    assert all(r.kind == "policy" for r in results)
    assert all(r.started_at and r.finished_at for r in results)


def test_violations_are_listed_with_targets_and_sql(catalog):
    results = {r.check_id: r for r in run_policies(catalog)}
    ledger = results["policy:column-has-classification:ledger"]
    assert ledger.measured == 2 and ledger.threshold == 0
    assert [v["target"] for v in ledger.diagnostics["violations"]] == [
        "ledger.entries.amount", "ledger.entries.booked_on"]
    assert "2 violations" in ledger.reason and "ledger.entries.amount" in ledger.reason
    assert ledger.sql.startswith("SELECT") and "classification" in ledger.sql
    assert ledger.product_id == "ledger" and ledger.target == "ledger"

    leads = results["policy:product-has-owner:leads"]
    assert "none of the 1 named owners is active" in leads.reason
    masking = results["policy:pii-declares-masking:marketing-contacts"]
    assert "contacts.phone, contacts.full_name" in masking.reason
    model = results["policy:model-input-has-description:churn-features"]
    assert "domain ai-ml" in model.reason
    passed = results["policy:product-has-owner:customers"]
    assert passed.reason.startswith("complies") and passed.diagnostics["violations"] == []


def test_contract_properties_come_from_the_stored_yaml(catalog):
    props = policies.contract_properties(catalog)
    rows = set(props[["product_id", "property", "value"]].itertuples(index=False, name=None))
    assert ("customers", "masking", "hashed") in rows
    assert ("marketing-contacts", "owner-note", "masking is on the roadmap") in rows


def test_product_ids_limit_the_scope(catalog):
    results = run_policies(catalog, product_ids=["ledger", "no-such-product"])
    assert {r.product_id for r in results} == {"ledger"}
    assert {r.check_id for r in results} == {
        "policy:product-has-owner:ledger", "policy:product-has-contract:ledger",
        "policy:column-has-classification:ledger"}


# --- steward policies ------------------------------------------------------------------------

STEWARD_POLICY = """\
-- id: contract-is-active
-- title: Published products have an active contract
-- severity: warning
-- description: Draft contracts are not a promise consumers can rely on;
--   a warning until the owner publishes the contract.
-- applies_to: domain:finance, tag:training
SELECT c.product_id, c.product_id || ' (' || c.contract_id || ')' AS target,
       'contract status is ' || coalesce(c.status, 'unset') AS reason,
       c.version
FROM contracts AS c
WHERE c.is_latest AND coalesce(c.status, '') <> 'active'
"""


def test_steward_policy_from_the_env_folder(catalog, tmp_path, monkeypatch):
    folder = tmp_path / "steward"
    _write(folder, "contract-is-active.sql", STEWARD_POLICY)
    monkeypatch.setenv(policies.POLICY_DIR_ENV, str(folder))
    pack = load_pack()
    assert "contract-is-active" in {p.id for p in pack}
    results = [r for r in run_policies(catalog) if r.check_id.startswith("policy:contract-is-active:")]
    assert {r.product_id: r.status for r in results} == {"ledger": "warning", "campaign-history": "passed"}
    ledger = next(r for r in results if r.product_id == "ledger")
    assert ledger.diagnostics["violations"] == [
        {"target": "ledger (finance.ledger)", "reason": "contract status is draft", "version": "0.3.0"}]
    assert ledger.diagnostics["description"].endswith("until the owner publishes the contract.")


def test_steward_file_replaces_a_starter_policy_with_its_id(catalog, tmp_path, monkeypatch):
    folder = tmp_path / "steward"
    _write(folder, "owner.sql", "-- id: product-has-owner\n-- title: Owners are optional here\n"
                                "-- severity: warning\nSELECT NULL AS product_id, NULL AS target, "
                                "NULL AS reason WHERE false\n")
    monkeypatch.setenv(policies.POLICY_DIR_ENV, str(folder))
    owner = [p for p in load_pack() if p.id == "product-has-owner"]
    assert len(owner) == 1 and owner[0].path.parent == folder
    statuses = _by_policy(run_policies(catalog))["product-has-owner"]
    assert set(statuses.values()) == {"passed"}


def test_applies_to_select_and_unattributed_violations(catalog, tmp_path):
    policy = policies.parse_policy(_write(tmp_path, "p.sql", """\
-- id: free-form
-- title: Free-form scope
-- severity: failed
-- applies_to: SELECT product_id FROM products WHERE domain_id = 'sales'
SELECT product_id, product_id AS target, 'sales product' AS reason FROM products
UNION ALL SELECT NULL, 'catalog', 'a catalog-wide finding'
"""))
    results = {r.check_id: r for r in run_policies(catalog, pack=[policy])}
    assert set(results) == {"policy:free-form:customers", "policy:free-form:leads",
                            "policy:free-form:catalog"}
    assert results["policy:free-form:catalog"].product_id is None
    only_leads = run_policies(catalog, pack=[policy], product_ids=["leads"])
    assert [r.check_id for r in only_leads] == ["policy:free-form:leads"]


# --- broken and hostile policies -----------------------------------------------------------

HEADER = "-- id: {id}\n-- title: Broken {id}\n-- severity: failed\n"
BROKEN = {
    "syntax": ("SELEC product_id FROM products", "syntax error"),
    "reads-passwd": ("SELECT 'x' AS product_id, 'x' AS target, column0 AS reason "
                     "FROM read_csv('/etc/passwd', sep = ':')",
                     "read_csv() is not allowed"),
    "reads-passwd-by-path": ("SELECT 'x' AS product_id, 'x' AS target, 'x' AS reason "
                             "FROM '/etc/passwd'", "reading the file '/etc/passwd'"),
    "reads-the-store": ("SELECT * FROM read_duckdb('{db}', table_name = 'products')",
                        "read_duckdb() is not allowed"),
    "writes": ("COPY products TO '{out}'", "COPY statement"),
    "attaches": ("ATTACH '{db}' AS store", "ATTACH statement"),
    "deletes": ("SELECT 1; DELETE FROM products", "2 statements"),
    "unknown-table": ("SELECT product_id, 'x' AS target, 'x' AS reason FROM check_results",
                      "check_results"),
    "wrong-columns": ("SELECT product_id FROM products", "must return columns product_id, target, reason"),
    "runaway": ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
                "SELECT 'x' AS product_id, 'x' AS target, count(*)::VARCHAR AS reason FROM r",
                "timed out"),
}


@pytest.mark.parametrize("policy_id", sorted(BROKEN))
def test_broken_policy_is_an_error_per_product_and_touches_nothing(catalog, tmp_path, policy_id):
    sql, message = BROKEN[policy_id]
    db = tmp_path / "catalog.duckdb"
    out = tmp_path / "stolen.csv"
    path = _write(tmp_path / "pack", f"{policy_id}.sql",
                  HEADER.format(id=policy_id) + sql.format(db=db, out=out))
    before = sorted(p.name for p in tmp_path.rglob("*"))
    # Only the runaway query needs a short limit; the others must be refused for what they
    # are, not for the time a loaded machine takes to start the sandbox.
    results = run_policies(catalog, pack=[parse_policy(path)], timeout_s=0.5 if policy_id == "runaway" else 30)
    assert sorted(r.product_id for r in results) == PRODUCTS, "one error per product in scope"
    for result in results:
        assert result.status == "error", result.reason
        assert message in result.reason, result.reason
        assert result.check_id == f"policy:{policy_id}:{result.product_id}"
    assert sorted(p.name for p in tmp_path.rglob("*")) == before, "a policy wrote a file"
    assert not out.exists()
    assert catalog.execute("SELECT count(*) FROM products").fetchone()[0] == len(PRODUCTS)


def test_one_broken_policy_does_not_stop_the_others(catalog, tmp_path, monkeypatch):
    folder = tmp_path / "steward"
    _write(folder, "bad.sql", HEADER.format(id="bad") + BROKEN["reads-passwd"][0])
    _write(folder, "bad-header.sql", "-- id: bad-header\n-- title: x\n-- severity: fatal\nSELECT 1")
    monkeypatch.setenv(policies.POLICY_DIR_ENV, str(folder))
    by_policy = _by_policy(run_policies(catalog))
    assert {k: v for k, v in by_policy.items() if k in EXPECTED} == EXPECTED
    assert set(by_policy["bad"].values()) == {"error"}
    assert set(by_policy["bad-header"].values()) == {"error"}
    reason = next(r.reason for r in run_policies(catalog, product_ids=["leads"])
                  if r.check_id == "policy:bad-header:leads")
    assert "bad-header.sql, line 3: severity 'fatal'" in reason


def test_broken_policy_with_no_products_still_reports(tmp_path):
    with connect(tmp_path / "empty.duckdb") as con:
        broken = policies.Policy(id="x", title="x", severity="failed", sql="", problem="unreadable")
        fine = load_pack()
        results = run_policies(con, pack=[broken, *fine])
    assert [(r.check_id, r.status) for r in results] == [("policy:x:catalog", "error")]


# --- header parsing ----------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("-- id: a\n-- title: t\n-- severity: failed\n-- owner: me\nSELECT 1", "line 4: unknown header key 'owner'"),
    ("-- id: a\n-- title: t\n-- severity: error\nSELECT 1", "line 3: severity 'error' must be one of failed, warning"),
    ("-- title: t\n-- severity: failed\nSELECT 1", "header lacks id"),
    ("-- id: a\n-- id: b\n-- title: t\n-- severity: failed\nSELECT 1", "line 2: 'id' given twice (first on line 1)"),
    ("-- id: a\n-- just a remark\n-- title: t\n-- severity: failed\nSELECT 1", "line 2: expected '-- key: value'"),
    ("-- id: Not Valid\n-- title: t\n-- severity: failed\nSELECT 1", "line 1: id 'Not Valid' must be"),
    ("-- id: a\n-- title: t\n-- severity: failed\n-- applies_to: everyone\nSELECT 1", "line 4: applies_to 'everyone'"),
    ("-- id: a\n-- title: t\n-- severity: failed\n", "no SQL after the header"),
])
def test_bad_header_names_file_and_line(tmp_path, text, message):
    path = _write(tmp_path, "steward-rule.sql", text)
    with pytest.raises(PolicyError) as caught:
        parse_policy(path)
    assert str(caught.value).startswith(str(path)), caught.value
    assert message in str(caught.value), caught.value


def test_header_continuation_and_defaults(tmp_path):
    policy = parse_policy(_write(tmp_path, "p.sql", "-- id: p\n-- title: T\n-- severity: warning\n"
                                 "-- description: first part\n--   second part\n\n"
                                 "-- a comment in the SQL\nSELECT 1"))
    assert policy.description == "first part second part"
    assert policy.applies_to == "all"
    assert policy.sql == "-- a comment in the SQL\nSELECT 1"


def test_a_catalog_without_the_tables_is_an_error_per_policy_not_a_crash(tmp_path):
    import duckdb

    con = duckdb.connect(str(tmp_path / "not-a-catalog.duckdb"))
    try:
        results = run_policies(con)
    finally:
        con.close()
    assert sorted(r.check_id for r in results) == sorted(f"policy:{p}:catalog" for p in EXPECTED)
    assert all(r.status == "error" and "catalog snapshot failed" in r.reason for r in results)


def test_a_huge_violation_list_is_capped_not_fetched_whole(catalog, tmp_path, monkeypatch):
    monkeypatch.setattr(policies, "MAX_FETCHED_VIOLATIONS", 100)
    path = _write(tmp_path, "huge.sql", HEADER.format(id="huge") +
                  "SELECT 'leads' AS product_id, 't' || i AS target, 'r' AS reason "
                  "FROM range(1000000) t(i)")
    result = run_policies(catalog, pack=[parse_policy(path)], product_ids=["leads"])[0]
    assert result.status == "failed" and result.measured == 100
    assert "at least 100 violations" in result.reason
    assert len(result.diagnostics["violations"]) == policies.MAX_LISTED_VIOLATIONS
