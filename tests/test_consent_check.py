"""The consent check kind on hand-made data with known answers: declarations from contracts,
validity at the time of use, withdrawals before a later use, masking of the drill-down, the
opt-in trend of the consent records, and the runner running it with the other checks."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest
import yaml

from catalog import access
from catalog.ingest import ingest_paths
from catalog.store import connect
from checks import consent, consent_reports, runner

CONSENT_EVENTS = """event_id,user_id,purpose,decision,decided_at,source_system
e1,u1,newsletter,granted,2026-01-01 00:00:00,web_signup
e2,u2,newsletter,withdrawn,2026-01-01 00:00:00,web_signup
e3,u3,newsletter,granted,2026-01-01 00:00:00,web_signup
e4,u3,newsletter,withdrawn,2026-01-10 00:00:00,unsubscribe_link
e5,u4,newsletter,granted,2026-01-20 00:00:00,preference_center
e6,u1,profiling,granted,2026-01-01 00:00:00,web_signup
"""
# u1 valid at both sends; u2 never opted in; u3 withdrew between its two sends; u4 opted in
# only after its send; u5 has no record at all.
SENDS = """send_id,user_id,email,sent_at
s1,u1,ann@example.com,2026-01-05 00:00:00
s2,u1,ann@example.com,2026-01-15 00:00:00
s3,u2,bob@example.com,2026-01-05 00:00:00
s4,u3,cy@example.com,2026-01-05 00:00:00
s5,u3,cy@example.com,2026-01-15 00:00:00
s6,u4,dee@example.com,2026-01-15 00:00:00
s7,u5,eve@example.com,2026-01-15 00:00:00
"""


def _contract(product: str, dataset: str, columns: list[tuple[str, str, bool]], custom: list[dict]) -> dict:
    return {
        "apiVersion": "v3.1.0", "kind": "DataContract", "id": f"test.{product}", "version": "1.0.0",
        "status": "active", "domain": "Test", "dataProduct": product,
        "team": {"name": "t", "members": [{"username": "o@example.com", "name": "O", "role": "Owner"}]},
        "servers": [{"server": "local", "type": "local", "format": "csv", "path": f"{dataset}.csv"}],
        "schema": [{"name": dataset, "physicalType": "table", "properties": [
            {"name": name, "logicalType": "string", "physicalType": "VARCHAR", "classification": "restricted"
             if pii else "internal", **({"tags": ["pii"]} if pii else {})} for name, _type, pii in columns]}],
        "customProperties": custom,
    }


def _mesh(root: Path, *, requires: object = None, source: object = None) -> Path:
    crm, mailer = root / "crm", root / "mailer"
    crm.mkdir(parents=True)
    mailer.mkdir(parents=True)
    (crm / "consent_events.csv").write_text(CONSENT_EVENTS)
    (mailer / "sends.csv").write_text(SENDS)
    source = source if source is not None else {"dataset": "consent_events"}
    requires = requires if requires is not None else [
        {"dataset": "sends", "purposes": ["newsletter", "profiling"], "userKey": "user_id", "usedAt": "sent_at"}]
    (crm / "crm.odcs.yaml").write_text(yaml.safe_dump(_contract(
        "crm", "consent_events", [(c, "", False) for c in
                                  ("event_id", "user_id", "purpose", "decision", "decided_at", "source_system")],
        [{"property": "meshgov.consent.source", "value": source}])))
    (mailer / "mailer.odcs.yaml").write_text(yaml.safe_dump(_contract(
        "mailer", "sends", [("send_id", "", False), ("user_id", "", False), ("email", "", True),
                            ("sent_at", "", False)],
        [{"property": "meshgov.consent.requires", "value": requires}])))
    db = root / "m.duckdb"
    with connect(db) as con:
        report = ingest_paths(con, [crm / "crm.odcs.yaml", mailer / "mailer.odcs.yaml"])
        assert not report.rejected, report.rejected
    return db


def _results(db: Path) -> dict[str, consent.CheckResult]:
    with connect(db) as con:
        return {r.check_id: r for r in consent.run(con)}


def test_consent_counts_users_without_valid_consent_at_the_time_of_use(tmp_path):
    results = _results(_mesh(tmp_path))
    newsletter = results["consent:mailer/sends/newsletter"]
    d = newsletter.diagnostics
    assert newsletter.status == "failed", newsletter.reason
    assert newsletter.kind == "consent"
    # u2 (never), u3 (withdrawn before s5), u4 (granted after s6), u5 (no record): 4 of 5 users.
    assert (d["users"], d["violating_users"]) == (5, 4), d
    assert (d["uses"], d["violating_uses"]) == (7, 4), "s3, s5, s6, s7 lack a valid consent"
    assert (d["withdrawn_users"], d["withdrawn_uses"], d["never_users"]) == (1, 1, 3), d
    assert d["coverage"] == pytest.approx(1 / 5), "only u1 was covered at every use"
    assert newsletter.measured == 4
    assert "withdrawn" in newsletter.reason and "never consented" in newsletter.reason, newsletter.reason
    by_day = {row["day"]: (row["users"], row["consenting_users"]) for row in d["trend"]}
    assert by_day == {"2026-01-05": (3, 2), "2026-01-15": (4, 1)}, by_day


def test_consent_sample_hashes_user_keys(tmp_path):
    results = _results(_mesh(tmp_path))
    sample = results["consent:mailer/sends/newsletter"].diagnostics["sample"]
    assert len(sample) == 4, sample
    assert all(row["user"].startswith("h:") for row in sample), "user keys are personal data: hashed in storage"
    assert not any(f"u{i}" in json.dumps(sample) for i in range(1, 6)), sample


def test_consent_purpose_only_one_user_granted(tmp_path):
    profiling = _results(_mesh(tmp_path))["consent:mailer/sends/profiling"]
    assert profiling.status == "failed"
    assert profiling.diagnostics["violating_users"] == 4, "only u1 granted profiling"


def test_consent_passes_when_everyone_consented(tmp_path):
    root = tmp_path
    db = _mesh(root)
    (root / "mailer" / "sends.csv").write_text(SENDS.splitlines()[0] + "\n" + "\n".join(SENDS.splitlines()[1:3]))
    with connect(db) as con:
        found = {r.check_id: r for r in consent.run(con)}
    assert found["consent:mailer/sends/newsletter"].status == "passed", found["consent:mailer/sends/newsletter"].reason


@pytest.mark.parametrize(("requires", "named"), [
    ("newsletter", "value 'newsletter' must be a mapping"),
    ([{"dataset": "nope", "purposes": ["x"], "usedAt": "sent_at"}], "dataset 'nope' is not a dataset of mailer"),
    ([{"dataset": "sends", "purposes": [], "usedAt": "sent_at"}], "purposes [] must be a non-empty list"),
    ([{"dataset": "sends", "purposes": ["newsletter"]}], "usedAt None must name the column"),
])
def test_consent_bad_declaration_is_an_error_naming_contract_property_value(tmp_path, requires, named):
    results = _results(_mesh(tmp_path, requires=requires))
    problem = results["consent:mailer/declaration"]
    assert problem.status == "error"
    assert "test.mailer" in problem.reason and "meshgov.consent.requires" in problem.reason, problem.reason
    assert named in problem.reason, problem.reason


def test_consent_missing_column_is_an_error(tmp_path):
    db = _mesh(tmp_path, requires=[{"dataset": "sends", "purposes": ["newsletter"], "userKey": "customer",
                                    "usedAt": "sent_at"}])
    result = _results(db)["consent:mailer/sends/newsletter"]
    assert result.status == "error" and "'customer'" in result.reason, result.reason


def test_consent_without_a_source_is_an_error(tmp_path):
    db = _mesh(tmp_path)
    with connect(db) as con:
        con.execute("DELETE FROM contract_properties WHERE property = 'meshgov.consent.source'")
        found = consent.run(con)
    assert {r.status for r in found} == {"error"}
    assert all("meshgov.consent.source" in r.reason for r in found), [r.reason for r in found]


def test_consent_drill_down_masks_by_role_and_audits_a_reveal(tmp_path):
    db = _mesh(tmp_path)
    viewer = access.demo_user("legal")
    rows = consent_reports.violation_rows(db, product_id="mailer", dataset="sends", purpose="newsletter", user=viewer,
                                  reveal=True)
    assert len(rows) == 4 and set(rows["send_id"]) == {"s3", "s5", "s6", "s7"}, rows
    assert not rows["email"].str.contains("@example.com").any(), "legal may not view PII: emails masked"
    assert not rows["user_id"].isin(["u2", "u3", "u4", "u5"]).any(), "the user key is masked too"
    assert set(rows["reason"]) == {consent.NO_CONSENT, consent.WITHDRAWN}
    scientist = access.demo_user("data_scientist")
    assert access.can(scientist, "view_pii")
    shown = consent_reports.violation_rows(db, product_id="mailer", dataset="sends", purpose="newsletter",
                                   user=scientist, reveal=True)
    assert set(shown["user_id"]) == {"u2", "u3", "u4", "u5"}, "a reveal by a permitted role is unmasked"
    with connect(db) as con:
        audited = con.execute("SELECT count(*) FROM audit_log WHERE action = 'view_pii'").fetchone()[0]
    assert audited == 1, "exactly the one unmasked view is audited"


def test_consent_source_trend_counts_opted_in_users_per_day(tmp_path):
    db = _mesh(tmp_path)
    trend = consent_reports.source_trend(db, days=25, now=datetime(2026, 1, 25, 12))
    news = trend[trend["purpose"] == "newsletter"].set_index("day")
    day = {d.strftime("%Y-%m-%d"): (r.users, r.opted_in) for d, r in news.iterrows()}
    assert day["2026-01-01"] == (3, 2), "u1, u3 granted, u2 withdrawn on day one"
    assert day["2026-01-10"] == (3, 1), "u3 withdrew"
    assert day["2026-01-20"] == (4, 2), "u4 opted in"
    assert day["2026-01-25"] == (4, 2)


def test_consent_runs_with_the_other_checks_and_is_stored(tmp_path):
    db = _mesh(tmp_path)
    run = runner.run_checks(db, triggered_by="test", with_policies=False)
    kinds = {r.check_id: r.status for r in run.results if r.kind == "consent"}
    assert kinds == {"consent:mailer/sends/newsletter": "failed", "consent:mailer/sends/profiling": "failed"}, kinds
    with connect(db) as con:
        coverage = consent_reports.coverage_by_product(con)
    assert set(coverage["purpose"]) == {"newsletter", "profiling"}
    assert coverage.set_index("purpose").loc["newsletter", "violating_users"] == 4
