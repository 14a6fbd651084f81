"""The synthetic contracts written by writer processes (sample_data.synthetic.writing, as
`seed --products N` does for large N) are the files the seed process writes alone: same
paths, in the products' order, same bytes."""

from __future__ import annotations

from sample_data import contracts, synthetic


def _files(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*.odcs.yaml"))}


def test_writer_processes_write_the_same_files_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(synthetic, "WRITERS_MIN_PRODUCTS", 1)
    monkeypatch.setattr(synthetic, "WRITE_CHUNK", 3)  # several chunks, so their order is exercised
    alone = synthetic.write_all(tmp_path / "alone", synthetic.products(8))
    with synthetic.writing(tmp_path / "pooled", 8, writers=2) as written:
        pooled = written()
    assert [p.relative_to(tmp_path / "pooled") for p in pooled] == \
        [p.relative_to(tmp_path / "alone") for p in alone], "the paths come back in the products' order"
    assert _files(tmp_path / "pooled") == _files(tmp_path / "alone"), "the writers write the very same files"


def test_writing_replaces_an_earlier_larger_run_and_keeps_foreign_files(tmp_path):
    folder = tmp_path / "contracts"
    synthetic.write_all(folder, synthetic.products(5))
    foreign = folder / "mine.odcs.yaml"
    foreign.write_text("# someone's own contract\n", encoding="utf-8")
    with synthetic.writing(folder, 3, writers=0) as written:
        paths = written()
    left = sorted(p.name for p in folder.rglob("*.odcs.yaml"))
    assert len(paths) == 3 and all(p.read_text(encoding="utf-8").startswith(contracts.HEADER) for p in paths)
    assert left == sorted([*(p.name for p in paths), "mine.odcs.yaml"]), \
        f"the two files of the larger run are gone, the foreign file stays: {left}"
