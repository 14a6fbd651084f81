"""A contract cannot take over a product other contracts describe: joining an existing
product needs the product's domain and one of its current owners (or must be a new revision
of a contract already attached). The refusal names the product and what would have changed,
and writes nothing."""

from __future__ import annotations

import textwrap

import duckdb
import pytest

from catalog.ingest import ingest_contract_text, ingest_paths
from catalog.odcs import ContractError
from catalog.store import connect

_TEMPLATE = textwrap.dedent("""\
    apiVersion: v3.1.0
    kind: DataContract
    id: {cid}
    version: {version}
    status: {status}
    domain: {domain}
    dataProduct: Customer Profiles
    description:
      purpose: {purpose}
    team:
      name: {team}
      members:
        - username: {owner}
          role: owner
    schema:
      - name: users
        physicalType: table
        properties:
          - name: user_id
            logicalType: string
            classification: internal
    """)


def _contract(cid: str = "customer-profiles.users", *, version: str = "1.0.0", status: str = "active",
              domain: str = "Customer", purpose: str = "One row per customer.", team: str = "customer-team",
              owner: str = "alice@example.com") -> str:
    return _TEMPLATE.format(cid=cid, version=version, status=status, domain=domain, purpose=purpose,
                            team=team, owner=owner)


def _product(con: duckdb.DuckDBPyConnection) -> tuple:
    return con.execute("SELECT domain_id, status, description FROM products "
                       "WHERE product_id = 'customer-profiles'").fetchone()


def _owners(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT DISTINCT username FROM owners WHERE product_id = "
                                      "'customer-profiles' ORDER BY 1").fetchall()]


def test_takeover_from_another_domain_is_rejected_with_what_it_would_change(tmp_path, tmp_db):
    takeover = tmp_path / "takeover.odcs.yaml"
    takeover.write_text(_contract("marketing.customer-profiles", status="deprecated", domain="Marketing",
                                  purpose="Now ours.", team="marketing-team", owner="mallory@example.com"))
    with connect(tmp_db) as con:
        ingest_contract_text(con, _contract(), source="original.yaml")
        before = (_product(con), _owners(con), con.execute("SELECT count(*) FROM contracts").fetchone())
        report = ingest_paths(con, [takeover])
        after = (_product(con), _owners(con), con.execute("SELECT count(*) FROM contracts").fetchone())
    assert not report.accepted and len(report.rejected) == 1, f"the takeover must be rejected: {report}"
    reason = report.rejected[0].reason
    for part in ("'customer-profiles'", "domain 'Customer' to 'Marketing'", "'active' -> 'deprecated'",
                 "replace its description", "add owners mallory@example.com",
                 "names none of the product's current owners"):
        assert part in reason, f"{part!r} missing from the reason: {reason}"
    assert after == before, f"a rejected takeover changes nothing: {before} -> {after}"
    assert before[0][0] == "customer", before


def test_same_domain_but_no_current_owner_is_rejected(tmp_db):
    with connect(tmp_db) as con:
        ingest_contract_text(con, _contract(), source="original.yaml")
        stranger = _contract("customer.other", team="other-team", owner="mallory@example.com")
        with pytest.raises(ContractError) as caught:
            ingest_contract_text(con, stranger, source="stranger.yaml")
        reason = str(caught.value)
        assert "names none of the product's current owners" in reason, reason
        assert _owners(con) == ["alice@example.com"], "no owner was added"


def test_an_owner_from_another_domain_is_rejected(tmp_db):
    with connect(tmp_db) as con:
        ingest_contract_text(con, _contract(), source="original.yaml")
        moved = _contract("marketing.cp", domain="Marketing")
        with pytest.raises(ContractError) as caught:
            ingest_contract_text(con, moved, source="moved.yaml")
        reason = str(caught.value)
        assert "its domain is 'Marketing', the product's is 'Customer'" in reason, reason
        assert _product(con)[0] == "customer", "the product stays in its domain"


def test_same_domain_and_a_current_owner_may_add_a_port(tmp_db):
    with connect(tmp_db) as con:
        ingest_contract_text(con, _contract(), source="original.yaml")
        ingest_contract_text(con, _contract("customer-profiles.events", owner="ALICE@example.com"),
                             source="events.yaml")
        contracts = {r[0] for r in con.execute("SELECT contract_id FROM contracts "
                                               "WHERE product_id = 'customer-profiles'").fetchall()}
    assert contracts == {"customer-profiles.users", "customer-profiles.events"}, contracts


def test_new_revision_of_an_attached_contract_may_change_the_product(tmp_db):
    with connect(tmp_db) as con:
        ingest_contract_text(con, _contract(), source="original.yaml")
        ingest_contract_text(con, _contract(version="1.1.0", status="deprecated", purpose="Retired.",
                                            owner="bob@example.com"), source="v2.yaml")
        assert _product(con)[1:] == ("deprecated", "Retired."), _product(con)
        assert _owners(con) == ["bob@example.com"], "the attached contract's owners may change hands"


def test_seeded_demo_customer_profiles_cannot_be_moved_to_marketing(tmp_path):
    """The reported takeover, on the demo mesh: a new id from Marketing naming Customer Profiles."""
    from sample_data.generate import seed

    db = tmp_path / "demo.duckdb"
    seed(db)
    takeover = tmp_path / "takeover.odcs.yaml"
    takeover.write_text(_contract("marketing.hijack", status="deprecated", domain="Marketing",
                                  purpose="Owned by Marketing now.", team="growth", owner="mallory@example.com"))
    with connect(db) as con:
        before = (_product(con), _owners(con))
        report = ingest_paths(con, [takeover])
        after = (_product(con), _owners(con))
        hijack = con.execute("SELECT count(*) FROM contracts WHERE contract_id = 'marketing.hijack'").fetchone()[0]
    assert report.rejected and "'customer-profiles'" in report.rejected[0].reason, report
    assert "to 'Marketing'" in report.rejected[0].reason, report.rejected[0].reason
    assert after == before and before[0][1] == "active", f"the product must not change: {before} -> {after}"
    assert hijack == 0, "nothing of the rejected contract is stored"


def test_official_examples_joining_my_quantum_without_its_domain_or_owners(shared_fixtures, tmp_db):
    """Real third-party files: the full example creates `my quantum` (domain seller, with a
    team); a revision of the same contract id may follow, a new id without domain or team may not."""
    odcs_dir = shared_fixtures / "odcs"
    with connect(tmp_db) as con:
        first = ingest_paths(con, [odcs_dir / "bitol-odcs__all__full-example.odcs.yaml"])
        assert len(first.accepted) == 1, first.rejected
        before = con.execute("SELECT domain_id, description FROM products WHERE product_id = 'my-quantum'").fetchone()
        joiner = ingest_paths(con, [odcs_dir / "bitol-odcs__schema__table-column.odcs.yaml"])
        revision = ingest_paths(con, [odcs_dir / "bitol-odcs__data-types__all-data-types.odcs.yaml"])
        after = con.execute("SELECT domain_id FROM products WHERE product_id = 'my-quantum'").fetchone()
    assert joiner.rejected and "existing product 'my-quantum'" in joiner.rejected[0].reason, joiner
    assert "its domain is '(none)', the product's is 'seller'" in joiner.rejected[0].reason, joiner.rejected[0].reason
    assert revision.accepted and not revision.rejected, f"a new revision of the attached contract: {revision}"
    assert before[0] == after[0] == "seller", (before, after)
