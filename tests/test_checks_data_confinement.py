"""Contracts that point their data at the store, a secrets file, a file outside the data
roots, a symlink out of the roots or a FIFO: every check and the preview end as `error`
with a reason naming contract, server and rule, and nothing of the file reaches any
result, CLI output, stored row, preview or page."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from catalog.access import demo_user
from catalog.ingest import ingest_paths
from catalog.store import connect
from checks.preview import PreviewUnavailable, dataset_preview
from checks.runner import run_checks
from ui.auth import PERSONA_KEY

ROOT = Path(__file__).resolve().parent.parent
SECRET = "SENTINEL-d41d8cd98f00"

_CONTRACT = textwrap.dedent("""\
    apiVersion: v3.1.0
    kind: DataContract
    id: {cid}
    version: 1.0.0
    status: active
    domain: Probe
    dataProduct: {cid}
    servers:
      - server: {server}
{server_lines}
    schema:
      - name: {table}
        physicalType: table
        properties:
          - name: v
            logicalType: string
            required: true
            classification: public
        quality:
          - metric: rowCount
            mustBeGreaterThan: 0
    """)


@pytest.fixture(autouse=True)
def _default_roots(monkeypatch, tmp_path):
    """The default root (the store's folder), whatever the environment running the tests says."""
    monkeypatch.delenv("MESHGOV_DATA_ROOTS", raising=False)
    monkeypatch.setenv("MESHGOV_SETTINGS", str(tmp_path / "absent.toml"))


def _server(kind: str, path: str) -> str:
    lines = (["type: duckdb", f"database: {path}"] if kind == "duckdb"
             else ["type: local", "format: csv", f"path: {path}"])
    return "\n".join(" " * 8 + line for line in lines)


@pytest.fixture(scope="module")
def hostile_mesh(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """A store in its own folder (the default data root) and one contract per way out;
    returns (store, contract id -> rule expected in the reason)."""
    home = tmp_path_factory.mktemp("mesh")
    outside = tmp_path_factory.mktemp("outside") / "aws.csv"
    outside.write_text(f"v\nAWS_SECRET_ACCESS_KEY={SECRET}\n")
    (home / ".streamlit").mkdir()
    (home / ".streamlit" / "secrets.toml").write_text(f'v\ncookie_secret = "{SECRET}"\n')
    (home / "client_secret.csv").write_text(f"v\n{SECRET}\n")
    (home / "link.csv").symlink_to(outside)
    os.mkfifo(home / "pipe.csv")
    db = home / "meshgov.duckdb"
    cases = {
        "probe-store": ("duckdb", str(db), "leak", "meshgov store"),
        "probe-store-wal": ("local", f"{db}.wal", "v", "meshgov store"),
        "probe-streamlit": ("local", ".streamlit/secrets.toml", "v", "app configuration"),
        "probe-secret-name": ("local", "client_secret.csv", "v", "secret file name"),
        "probe-outside": ("local", str(outside), "v", "outside the data roots"),
        "probe-symlink": ("local", "link.csv", "v", "symlink leaves the data roots"),
        "probe-fifo": ("local", "pipe.csv", "v", "not a regular file"),
    }
    contracts = []
    for cid, (kind, path, table, _rule) in cases.items():
        contract = home / f"{cid}.odcs.yaml"
        contract.write_text(_CONTRACT.format(cid=cid, server=f"srv-{cid}", table=table,
                                             server_lines=_server(kind, path)))
        contracts.append(contract)
    with connect(db) as con:
        report = ingest_paths(con, contracts)
        assert not report.rejected, report.rejected
        con.execute(f"CREATE TABLE leak AS SELECT '{SECRET}' AS v")
    return db, {cid: rule for cid, (*_, rule) in cases.items()}


def _no_secret(where: str, text: str) -> None:
    assert SECRET not in text, f"content of a refused file reached {where}"


def test_every_check_of_a_refused_file_is_an_error_naming_contract_server_and_rule(hostile_mesh):
    db, rules = hostile_mesh
    # A FIFO that is opened blocks until a writer comes; feed it so a wrong read cannot hang
    # the suite, and so the secret would show if it were read.
    feeder = threading.Thread(target=lambda: Path(db.parent / "pipe.csv").write_text(f"v\n{SECRET}\n"),
                              daemon=True)
    feeder.start()
    run = run_checks(db, product_ids=list(rules), triggered_by="test", with_policies=False)
    for cid, rule in rules.items():
        data = [r for r in run.results if r.product_id == cid and r.kind in {"schema", "quality", "pii"}]
        assert data, f"{cid}: the dataset's checks must still appear, as errors"
        for result in data:
            assert result.status == "error", f"{cid}: {result.check_id} is {result.status}: {result.reason}"
            for part in (f"contract {cid}", f"server srv-{cid}", f"rule '{rule}'"):
                assert part in result.reason, f"{cid}: {part!r} missing from the reason: {result.reason}"
        _no_secret(f"the results of {cid}",
                   json.dumps([r.__dict__ for r in data], default=str))
    with connect(db) as con:
        stored = con.execute("SELECT * FROM check_results").df().to_json()
    _no_secret("the stored check results", stored)


def test_cli_output_carries_no_content(hostile_mesh):
    db, rules = hostile_mesh
    done = subprocess.run([sys.executable, "-m", "checks", "run", "--all", "--json", "--db", str(db)],
                          capture_output=True, text=True, timeout=300, cwd=ROOT, env=dict(os.environ))
    assert "refused by rule" in done.stdout, f"the CLI must report the refusals: {done.stdout[-2000:]}"
    _no_secret("the CLI output", done.stdout + done.stderr)


@pytest.mark.parametrize("role", ["viewer", "admin", "data_scientist"])
def test_preview_of_a_refused_file_is_an_error_for_every_role(hostile_mesh, role):
    db, rules = hostile_mesh
    for cid, rule in rules.items():
        with pytest.raises(PreviewUnavailable) as caught:
            dataset_preview(db, product_id=cid, dataset="leak" if cid == "probe-store" else "v",
                            user=demo_user(role), reveal=True)
        message = str(caught.value)
        assert f"contract {cid}" in message and f"rule '{rule}'" in message, message
        _no_secret(f"the preview of {cid}", message)


def test_catalog_page_shows_the_refusal_not_the_file(hostile_mesh, monkeypatch):
    db, _ = hostile_mesh
    monkeypatch.setenv("MESHGOV_DB", str(db))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
    at.session_state[PERSONA_KEY] = "viewer"
    at.query_params["product"] = "probe-streamlit"
    at.run()
    at.switch_page("views/catalog_page.py").run()
    assert not at.exception, at.exception
    shown = " ".join(str(e.value) for e in (*at.info, *at.error, *at.markdown, *at.caption))
    shown += " ".join(f.value.to_json() for f in at.dataframe if isinstance(f.value, pd.DataFrame))
    visible = shown.replace("\\", "")  # md() escapes Markdown punctuation; the reader sees none of it
    assert "refused by rule 'app configuration'" in visible, f"the page must say why: {shown[:1500]}"
    _no_secret("the catalog page", shown)
