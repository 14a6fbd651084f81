"""Batched contract writes (catalog.ingest_batch) give every file the outcome it gets when
stored one transaction per file: same accepted / unchanged / revision, same rows, same
search answers, one audit row per new revision in a chain that verifies."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from catalog import audit, audit_verify, ingest, search, store
from catalog.ingest import ingest_paths
from sample_data import contracts, synthetic

CONTRACTS = Path(__file__).parent / "fixtures" / "contracts"
COMPARED = {
    "contracts": "SELECT contract_id, revision, version, product_id, api_version, validated_against, content_hash, "
                 "source_file FROM contracts",
    "products": "SELECT product_id, name, domain_id, description, status, tags FROM products",
    "domains": "SELECT * FROM domains",
    "owners": "SELECT * FROM owners",
    "servers": "SELECT * FROM servers",
    "datasets": "SELECT * FROM datasets",
    "columns": "SELECT * FROM columns",
    "slos": "SELECT * FROM slos",
    "contract_properties": "SELECT * FROM contract_properties",
    "search_terms": "SELECT * FROM search_terms",
    "contract_documents": "SELECT yaml_sha256, document FROM contract_documents",
    "audit": "SELECT actor, action, target, before, after FROM audit_log",
}


def _folder(tmp_path: Path, n_synthetic: int = 12) -> Path:
    """Synthetic contracts, two revisions of one contract, an identical copy, a rejected file."""
    folder = tmp_path / "incoming"
    synthetic.write_all(folder / "synthetic", synthetic.products(n_synthetic))
    for name in ("orders.v1.odcs.yaml", "customer-profiles.odcs.yaml", "orders.v2.odcs.yaml"):
        shutil.copy(CONTRACTS / name, folder / f"{len(list(folder.glob('*.yaml')))}-{name}")
    shutil.copy(CONTRACTS / "orders.v2.odcs.yaml", folder / "9-orders.v2-again.odcs.yaml")
    (folder / "5-broken.odcs.yaml").write_text((CONTRACTS / "orders.v1.odcs.yaml").read_text()
                                               .replace("logicalType: string", "logicalType: strnig", 1))
    return folder


def _ingest(db: Path, paths: list[Path], **kwargs) -> tuple[ingest.IngestReport, dict[str, list]]:
    with store.connect(db) as con:
        report = ingest_paths(con, paths, **kwargs)
        rows = {name: sorted(map(repr, con.execute(sql).fetchall())) for name, sql in COMPARED.items()}
        rows["search"] = [list(search.search(con, q)["product_id"]) for q in ("orders", "invoice", "email")]
        verdict = audit_verify.verify(con)
        assert verdict.ok, f"audit chain broken after ingest: {verdict.summary()}"
    return report, rows


def _outcomes(report: ingest.IngestReport) -> list:
    return sorted([("accepted", a.file, a.id, a.version, a.unchanged) for a in report.accepted]
                  + [("rejected", r.file, r.reason) for r in report.rejected]
                  + [("warning", w.file, w.message) for w in report.warnings])


@pytest.mark.parametrize("bulk", [False, True])
def test_batched_writes_give_the_per_file_outcome(tmp_path, monkeypatch, bulk):
    folder = _folder(tmp_path)
    batched_report, batched = _ingest(tmp_path / "batched.duckdb", [folder], bulk=bulk)
    monkeypatch.setattr(ingest, "BATCH_FILES", 1)  # every contract in a transaction of its own
    single_report, single = _ingest(tmp_path / "single.duckdb", [folder], bulk=bulk)
    assert _outcomes(batched_report) == _outcomes(single_report), "outcomes differ between batched and per-file"
    for table in batched:
        assert batched[table] == single[table], f"{table}: batched writes differ from per-file writes"
    accepted = {Path(a.file).name: a for a in batched_report.accepted}
    assert accepted["9-orders.v2-again.odcs.yaml"].unchanged, "an identical file later in the batch is unchanged"
    assert not accepted["2-orders.v2.odcs.yaml"].unchanged, "a changed file is a new revision"
    assert [Path(r.file).name for r in batched_report.rejected] == ["5-broken.odcs.yaml"], batched_report.rejected
    revisions = [r for r in batched["contracts"] if "'commerce-orders'" in r]
    assert len(revisions) == 2, f"orders v1 and v2 are two revisions: {revisions}"


def test_reingesting_a_batch_is_a_no_op(tmp_path):
    folder = tmp_path / "incoming"
    synthetic.write_all(folder, synthetic.products(6))
    shutil.copy(CONTRACTS / "customer-profiles.odcs.yaml", folder)
    db = tmp_path / "meshgov.duckdb"
    _, first = _ingest(db, [folder])
    again, second = _ingest(db, [folder])
    assert all(a.unchanged for a in again.accepted), [a for a in again.accepted if not a.unchanged]
    assert first == second, "re-ingesting identical files must write nothing"


def test_a_contract_joining_another_contracts_product_is_stored_on_its_own(tmp_path, monkeypatch):
    """Attaching to a product another contract id holds is decided file by file (where the
    ingest rules about products live); the rest of the batch is still batched."""
    base = synthetic.products(3)
    folder = tmp_path / "incoming"
    synthetic.write_all(folder, base)
    twin = contracts.document(base[0])
    twin["id"] = twin["id"] + "-twin"
    contracts.write(twin, folder / "zz-twin.odcs.yaml")
    batched_report, batched = _ingest(tmp_path / "batched.duckdb", [folder])
    monkeypatch.setattr(ingest, "BATCH_FILES", 1)
    single_report, single = _ingest(tmp_path / "single.duckdb", [folder])
    assert _outcomes(batched_report) == _outcomes(single_report)
    assert batched == single, "the twin contract must land as it does per file"
    owners = [r for r in batched["contracts"] if base[0].product_id in r]
    assert len(owners) == 2, f"two contracts of one product: {owners}"


def test_a_batch_that_cannot_be_written_writes_nothing(tmp_path, monkeypatch):
    folder = _folder(tmp_path, n_synthetic=4)
    db = tmp_path / "meshgov.duckdb"
    monkeypatch.setenv(audit.KEY_ENV, "k" * 32)
    with store.connect(db) as con:
        ingest_paths(con, [CONTRACTS / "customer-profiles.odcs.yaml"])  # the trail takes this key
    monkeypatch.setenv(audit.KEY_ENV, "another-key-" * 3)  # every audit append now fails
    with store.connect(db) as con:
        before = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # noqa: S608
                  for t in ("contracts", "products", "columns", "audit_log", "search_terms", "contract_documents")}
        report = ingest_paths(con, [folder])
        after = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in before}  # noqa: S608
    assert not [a for a in report.accepted if not a.unchanged], "nothing can be accepted without its audit row"
    assert len(report.rejected) >= 6, f"every new contract is rejected: {report.rejected}"
    assert before == after, f"a failed batch wrote rows (before, after): {before} {after}"


@pytest.mark.parametrize("bulk", [False, True])
def test_every_new_revision_comes_with_its_parsed_document(tmp_path, bulk):
    """A check run reads contract_documents instead of parsing the YAML: ingest writes the row
    of each new revision, keyed as the run looks it up (the SHA-256 of the stored text)."""
    import json

    from catalog import odcs

    folder = _folder(tmp_path)
    with store.connect(tmp_path / "m.duckdb") as con:
        ingest_paths(con, [folder], bulk=bulk)
        stored = con.execute("""SELECT c.raw_yaml, c.content_hash = sha256(c.raw_yaml), d.document
                                FROM contracts c LEFT JOIN contract_documents d ON d.yaml_sha256 = sha256(c.raw_yaml)
                                """).fetchall()
        extra = con.execute("SELECT count(*) FROM contract_documents WHERE yaml_sha256 NOT IN "
                            "(SELECT content_hash FROM contracts)").fetchone()[0]
    assert len(stored) == 15, f"12 synthetic contracts, customer profiles, orders v1 and v2: {len(stored)}"
    for raw_yaml, same_key, document in stored:
        assert same_key, "the content hash is the SHA-256 the run looks documents up by"
        assert document is not None, f"no parsed document for {raw_yaml[:80]!r}"
        assert json.loads(document) == odcs.load_yaml(raw_yaml), "the document is the stored text's"
    assert extra == 0, "the rejected and the unchanged files leave no document behind"


def test_a_bulk_load_gives_back_the_checkpoint_threshold(tmp_path, monkeypatch):
    """A bulk load raises DuckDB's checkpoint threshold while it writes (one checkpoint instead
    of one every few batches) and sets it back afterwards, whatever the outcome."""
    from catalog import ingest_pool

    monkeypatch.setattr(ingest_pool, "POOL_MIN_FILES", 1)
    seen = []
    real = ingest.store_contracts

    def watching(con, *args, **kwargs):
        seen.append(con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0])
        return real(con, *args, **kwargs)

    monkeypatch.setattr(ingest, "store_contracts", watching)
    with store.connect(tmp_path / "m.duckdb") as con:
        before = con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
        report = ingest_paths(con, [_folder(tmp_path, n_synthetic=4)], bulk=True, workers=0)
        after = con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
    assert report.accepted, "the folder's contracts are stored"
    assert any(s != before for s in seen), f"the threshold is raised while the batches are written: {seen}"
    assert after == before, f"the threshold is given back: {before} -> {after}"
