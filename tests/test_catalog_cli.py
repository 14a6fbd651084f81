"""`python -m catalog`: help texts, DB location handling, and errors as messages, not tracebacks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from catalog import cli, store
from tests.conftest import LOCAL_FIXTURES, PROJECT_ROOT

ORDERS = LOCAL_FIXTURES / "contracts" / "orders.v1.odcs.yaml"


def run(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_python_m_catalog_help_runs_as_a_module():
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-m", "catalog", "--help"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"--help must exit 0: {done.stderr}"
    for command in ("ingest", "search", "lineage"):
        assert command in done.stdout, f"--help should list {command!r}: {done.stdout}"
    assert "Traceback" not in done.stderr, done.stderr


def subcommands() -> list[str]:
    parser = cli.build_parser()
    action = next(a for a in parser._actions if a.dest == "command")
    return sorted(action.choices)


@pytest.mark.parametrize("command", subcommands())
def test_each_subcommand_has_help(capsys, command):
    code, out, err = run(capsys, command, "--help")
    assert code == 0, f"{command} --help exits 0, got {code}: {err}"
    assert out.startswith("usage: python -m catalog " + command), f"{command} --help prints its usage: {out[:200]}"
    if command in ("ingest", "search"):
        assert "--db" in out, f"{command} --help documents --db: {out}"


def test_ingest_and_search_document_their_options(capsys):
    _, out, _ = run(capsys, "ingest", "--help")
    assert "--json" in out and "PATH" in out and "Exit 0" in out, out
    _, out, _ = run(capsys, "search", "--help")
    for option in ("--json", "--limit", "--domain", "--owner", "--classification"):
        assert option in out, f"search --help should document {option}: {out}"


@pytest.mark.parametrize("argv, fragment", [
    ([], "required: command"),
    (["frobnicate"], "invalid choice"),
    (["ingest"], "PATH"),
    (["search", "--limit", "lots"], "expected a whole number"),
    (["audit", "list", "--limit", "-5"], "argument --limit: must be between 0"),
    (["search", "x", "--limit", "100000000000000000000"], "argument --limit: must be between 1"),
    (["search", "x", "--limit", "0"], "argument --limit: must be between 1"),
])
def test_usage_errors_exit_2_with_usage(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2, f"{argv}: usage errors exit 2, got {code}"
    assert "usage:" in err and fragment in err, f"{argv}: stderr should show usage and {fragment!r}: {err}"
    assert "Traceback" not in err


def test_missing_db_folders_are_created(tmp_path, capsys):
    db = tmp_path / "not" / "yet" / "there" / "catalog.duckdb"
    code, out, err = run(capsys, "ingest", str(ORDERS), "--db", str(db), "--json")
    assert code == 0, f"ingest into a new folder works: {err}"
    assert db.is_file(), "the DB file and its folders are created"
    assert json.loads(out)["accepted"][0]["id"] == "commerce-orders"


@pytest.mark.parametrize("kind, fragment", [
    ("parent is a file", "cannot create the folder"),
    ("path is a folder", "cannot open"),
    ("path is not DuckDB", "cannot open"),
])
def test_unusable_db_path_is_a_readable_error(tmp_path, capsys, kind, fragment):
    if kind == "parent is a file":
        (tmp_path / "file").write_text("x")
        db = tmp_path / "file" / "catalog.duckdb"
    elif kind == "path is a folder":
        db = tmp_path / "folder"
        db.mkdir()
    else:
        db = tmp_path / "catalog.duckdb"
        db.write_text("this is not a database")
    for argv in (["ingest", str(ORDERS)], ["search", "orders"]):
        code, _, err = run(capsys, *argv, "--db", str(db))
        assert code == 2, f"{kind}: {argv[0]} should exit 2, got {code}"
        assert err.startswith("error: ") and fragment in err and str(db) in err, f"{kind}: {err}"
        assert "Traceback" not in err


def test_newer_db_is_refused_by_the_cli(tmp_db, capsys):
    with store.connect(tmp_db) as con:
        con.execute("INSERT INTO schema_version (version, name) VALUES (?, 'future')",
                    [store.latest_schema_version() + 1])
    code, _, err = run(capsys, "search", "x", "--db", str(tmp_db))
    assert code == 2 and "newer meshgov" in err, f"exit 2 with the upgrade message: {code} {err}"


def test_meshgov_db_environment_variable_is_the_default(tmp_path, monkeypatch, capsys):
    db = tmp_path / "from-env.duckdb"
    monkeypatch.setenv("MESHGOV_DB", str(db))
    code, _, err = run(capsys, "ingest", str(ORDERS))
    assert code == 0 and db.is_file(), f"without --db, $MESHGOV_DB is used: {err}"
    code, out, _ = run(capsys, "search", "orders", "--json")
    assert code == 0 and json.loads(out)[0]["product_id"] == "web-shop-orders", out


def test_seed_lives_above_the_catalog():
    """`python -m sample_data seed` seeds; `python -m catalog` must not depend on the demo."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    done = subprocess.run([sys.executable, "-m", "sample_data", "seed", "--products", "lots"], cwd=PROJECT_ROOT,
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid int value" in done.stderr, done.stderr
    assert "seed" not in subcommands(), "the seed command moved to python -m sample_data"
