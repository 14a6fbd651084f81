"""Ingest warnings about revision order: an older version that becomes the newest revision,
and one contract id with different content twice in a batch."""

from __future__ import annotations

from catalog import ingest
from catalog.store import connect
from tests.conftest import LOCAL_FIXTURES

ORDERS = (LOCAL_FIXTURES / "contracts" / "orders.v1.odcs.yaml").read_text()


def _write(folder, name: str, version: str, description_suffix: str = ""):
    text = ORDERS.replace("version: 1.0.0", f"version: {version}", 1)
    if description_suffix:
        text = text.replace("\nstatus:", f"\ntags: [{description_suffix}]\nstatus:", 1) \
            if "\ntags:" not in text else text + f"# {description_suffix}\n"
    path = folder / name
    path.write_text(text)
    return path


def test_reingesting_an_older_version_warns_naming_both(tmp_db, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    new = _write(tmp_path / "a", "orders.yaml", "2.0.0")
    old = _write(tmp_path / "b", "orders.yaml", "1.0.0")
    with connect(tmp_db) as con:
        first = ingest.ingest_paths(con, [new], actor="tester")
        assert not first.warnings or all("older" not in w.message for w in first.warnings), first.warnings
        second = ingest.ingest_paths(con, [old], actor="tester")
    messages = [w.message for w in second.warnings if "older" in w.message]
    assert len(messages) == 1, second.warnings
    assert "1.0.0" in messages[0] and "2.0.0" in messages[0] and "newest revision" in messages[0], messages


def test_a_newer_version_does_not_warn(tmp_db, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with connect(tmp_db) as con:
        ingest.ingest_paths(con, [_write(tmp_path / "a", "orders.yaml", "1.0.0")], actor="tester")
        report = ingest.ingest_paths(con, [_write(tmp_path / "b", "orders.yaml", "1.1.0")], actor="tester")
    assert not [w for w in report.warnings if "older" in w.message or "batch" in w.message], report.warnings


def test_one_id_with_different_content_twice_in_a_batch_warns_naming_both(tmp_db, tmp_path):
    first = _write(tmp_path, "a-orders.yaml", "1.0.0")
    second = _write(tmp_path, "b-orders.yaml", "1.0.1", "edited")
    same = tmp_path / "c-orders.yaml"
    same.write_text(second.read_text())
    with connect(tmp_db) as con:
        report = ingest.ingest_paths(con, [tmp_path], actor="tester")
    assert not report.rejected, report.rejected
    batch = [w for w in report.warnings if "in this batch" in w.message]
    assert len(batch) == 1, f"one warning for the differing pair, none for the identical copy: {report.warnings}"
    message = batch[0].message
    assert str(first) in message and "1.0.0" in message and "1.0.1" in message and batch[0].file == str(second), message
