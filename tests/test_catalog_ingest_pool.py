"""Bulk ingest with worker processes (catalog.ingest_pool) reaches the very outcome of the
parent working alone: same accepted, rejected (same reasons) and warnings, in the same
order, and the same rows in the store."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from catalog import ingest_pool
from catalog.ingest import ingest_paths
from catalog.store import connect
from sample_data import contracts, synthetic

FIXTURES = Path(__file__).parent / "fixtures" / "contracts"


def _folder(root: Path) -> Path:
    folder = root / "mixed"
    made = synthetic.products(12)
    for i, product in enumerate(made):
        contracts.write(contracts.document(product), folder / f"{i:02d}-{product.product_id}.odcs.yaml")
    bad = contracts.document(made[3])
    bad["schema"][0]["properties"][2]["logicalType"] = 12
    contracts.write(bad, folder / "05a-wrong-type.odcs.yaml")
    newer = contracts.document(made[4])
    newer["description"]["usage"] = "Changed in the same batch."
    contracts.write(newer, folder / "11a-same-id-changed.odcs.yaml")
    (folder / "02a-not-yaml.yaml").write_text("apiVersion: v3.1.0\nschema: [1, 2\n", encoding="utf-8")
    (folder / "03a-latin1.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    (folder / "04a-empty.yml").write_text("# nothing here\n", encoding="utf-8")
    for fixture in FIXTURES.glob("*.yaml"):
        (folder / f"07-{fixture.name}").write_text(fixture.read_text(encoding="utf-8"), encoding="utf-8")
    return folder


def _outcome(report) -> dict:
    return {
        "accepted": [(Path(a.file).name, a.id, a.version, a.unchanged, a.kind) for a in report.accepted],
        "rejected": [(Path(r.file).name, r.reason.replace(str(Path(r.file).parent), "<dir>"))
                     for r in report.rejected],
        "warnings": [(Path(w.file).name, w.message.replace(str(Path(w.file).parent), "<dir>"))
                     for w in report.warnings],
    }


def _stored(con) -> dict:
    return {
        "contracts": con.execute("""SELECT contract_id, revision, version, product_id, api_version,
                                           validated_against, content_hash, regexp_replace(source_file, '.*/', '')
                                    FROM contracts ORDER BY ALL""").fetchall(),
        "columns": con.execute("SELECT count(*), count(DISTINCT contract_id) FROM columns").fetchone(),
        "audit": con.execute("SELECT action, target FROM audit_log WHERE action = 'ingest' ORDER BY seq").fetchall(),
        "search": con.execute("SELECT count(*), sum(tf) FROM search_terms").fetchone(),
        "documents": con.execute("SELECT yaml_sha256, document FROM contract_documents ORDER BY ALL").fetchall(),
    }


def test_workers_reach_the_same_outcome_as_the_parent_alone(tmp_path, monkeypatch):
    folder = _folder(tmp_path)
    monkeypatch.setattr(ingest_pool, "POOL_MIN_FILES", 1)
    monkeypatch.setattr(ingest_pool, "CHUNK_FILES", 3)  # several chunks, so their order is exercised
    outcomes, stored = {}, {}
    for workers in (0, 2):
        with connect(tmp_path / f"w{workers}.duckdb") as con:
            outcomes[workers] = _outcome(ingest_paths(con, [folder], bulk=True, workers=workers, actor="t"))
            stored[workers] = _stored(con)
    alone = outcomes[0]
    assert len(alone["accepted"]) == 16 and len(alone["rejected"]) == 4, f"the folder's files as planned: {alone}"
    assert any("logicalType" in reason for _, reason in alone["rejected"]), \
        f"the schema fault names its field: {alone['rejected']}"
    assert any("same batch" in w or "this batch" in w for _, w in alone["warnings"]), alone["warnings"]
    assert outcomes[2] == alone, "workers must reach the same per-file outcome, in the same order"
    assert stored[2] == stored[0], "workers must leave the same rows in the store"


def _never(path: Path):
    raise AssertionError(f"{path} must not be checked")


def test_small_or_non_bulk_loads_use_no_workers(tmp_path):
    files = [tmp_path / f"{i}.yaml" for i in range(5)]
    with ingest_pool.checked_in_workers(files, check=_never, suffixes={".yaml"}, workers=2) as take:
        assert all(take(f) is None for f in files), "below POOL_MIN_FILES the parent prepares every file"


@pytest.mark.parametrize(("raw", "expected"), [("0", 0), ("3", 3), (" 1 ", 1)])
def test_worker_count_follows_the_environment(monkeypatch, raw, expected):
    monkeypatch.setenv(ingest_pool.ENV_WORKERS, raw)
    assert ingest_pool.worker_count() == expected


def checked_with_pid(path: Path):
    """The worker's check, with the process it ran in (module level: sent by reference)."""
    from catalog.ingest import prepare_contract_file

    return os.getpid(), prepare_contract_file(path)


def test_the_pooled_files_are_checked_in_other_processes(tmp_path, monkeypatch):
    from catalog import ingest

    folder = _folder(tmp_path)
    files = sorted(folder.iterdir())
    monkeypatch.setattr(ingest_pool, "POOL_MIN_FILES", 1)
    ingest_pool.last_fallback = None
    with ingest_pool.checked_in_workers(files, check=checked_with_pid, suffixes=ingest.CONTRACT_SUFFIXES,
                                        workers=2) as take:
        outcomes = [take(f) for f in files]
    assert all(o is not None for o in outcomes), "every .yaml/.yml file is checked by a worker"
    assert os.getpid() not in {pid for pid, _ in outcomes}, \
        f"the parent must not check the pooled files itself (pool fell back: {ingest_pool.last_fallback})"
    assert sum(isinstance(o, ingest.PreparedContract) for _, o in outcomes) == 16, \
        "the workers' outcomes: the 16 loadable, valid documents come back prepared"


def test_official_fixtures_have_the_same_outcome_through_the_workers(shared_fixtures, monkeypatch):
    """The 18 official examples (3 with the warning naming v3.1.0) and 28 negative tests,
    prepared by workers, as `ingest_paths` does in a bulk load, and by the parent alone."""
    from catalog import ingest

    files = sorted(p for p in (shared_fixtures / "odcs").iterdir() if p.is_file())
    monkeypatch.setattr(ingest_pool, "POOL_MIN_FILES", 1)
    with ingest_pool.checked_in_workers(files, check=ingest.prepare_contract_file,
                                        suffixes=ingest.CONTRACT_SUFFIXES, workers=2) as take:
        pooled = [take(f) for f in files]
    alone = [ingest.prepare_contract_file(f) for f in files]

    def summary(outcomes):
        prepared = [o for o in outcomes if isinstance(o, ingest.PreparedContract)]
        return {"accepted": [(p.source, p.content_hash, p.validation.validated_against) for p in prepared],
                "warned": [(p.source, p.validation.warnings) for p in prepared if p.validation.warnings],
                "rejected": [(r.file, r.reason) for o in outcomes if isinstance(o, ingest.IngestReport)
                             for r in o.rejected]}

    got = summary(pooled)
    assert (len(got["accepted"]), len(got["warned"]), len(got["rejected"])) == (18, 3, 28), \
        f"18 accepted (3 warned), 28 rejected: {got['rejected']}"
    assert all("v3.1.0" in w for _, warnings in got["warned"] for w in warnings), got["warned"]
    assert got == summary(alone), "workers and the parent alone must agree on every official file"


def test_workers_do_not_run_the_parents_main_script(tmp_path, monkeypatch):
    """Streamlit (the app, AppTest) leaves the page script it ran as `__main__`; a spawned
    worker re-runs that file first. Here it is a script that kills its process, as a page
    run bare did: the workers must still check the files (no fallback to the parent)."""
    import types

    from catalog import ingest

    script = tmp_path / "page.py"
    script.write_text("import os\nif __name__ == '__mp_main__':\n    os._exit(3)\n")
    page = types.ModuleType("__main__")
    page.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", page)
    folder = _folder(tmp_path)
    files = sorted(folder.iterdir())
    monkeypatch.setattr(ingest_pool, "POOL_MIN_FILES", 1)
    ingest_pool.last_fallback = None
    with ingest_pool.checked_in_workers(files, check=checked_with_pid, suffixes=ingest.CONTRACT_SUFFIXES,
                                        workers=2) as take:
        outcomes = [take(f) for f in files]
    assert ingest_pool.last_fallback is None, f"the pool fell back to the parent: {ingest_pool.last_fallback}"
    assert os.getpid() not in {pid for pid, _ in outcomes}, "the workers checked the files"
    assert sys.modules["__main__"] is page, "the parent's __main__ is given back"


def test_workers_killed_between_answers_leave_the_parent_to_check_the_rest(tmp_path, monkeypatch):
    """A worker that dies after its last answer breaks the pool on the next submit, not on a
    result: the parent must take that chunk and every later one itself, not raise."""
    import psutil

    folder = tmp_path / "many"
    made = synthetic.products(16)
    for i, product in enumerate(made):
        contracts.write(contracts.document(product), folder / f"{i:02d}-{product.product_id}.odcs.yaml")
    files = sorted(folder.glob("*.yaml"))
    monkeypatch.setattr(ingest_pool, "POOL_MIN_FILES", 2)
    monkeypatch.setattr(ingest_pool, "CHUNK_FILES", 1)
    monkeypatch.setattr(ingest_pool, "CHUNKS_IN_FLIGHT", 2)
    ingest_pool.last_fallback = None
    from catalog.ingest import CONTRACT_SUFFIXES, prepare_contract_file

    with ingest_pool.checked_in_workers(files, check=prepare_contract_file, suffixes=CONTRACT_SUFFIXES,
                                        workers=2) as take:
        first = take(files[0])
        time.sleep(1.0)  # the chunks in flight are answered: only the next submit can fail
        for worker in psutil.Process().children(recursive=True):
            if "spawn_main" in " ".join(worker.cmdline()):
                worker.kill()
        time.sleep(1.0)  # the executor has noticed and marked itself broken
        rest = [take(f) for f in files[1:]]
    got = [first, *rest]
    from catalog.contract_rows import PreparedContract

    assert [type(o) for o in got] == [PreparedContract] * len(files), \
        "every file is prepared, by a worker or by the parent, in order"
    assert [Path(o.source).name for o in got] == [f.name for f in files], "each answer is its file's"
    assert ingest_pool.last_fallback, "the broken pool is noted"
