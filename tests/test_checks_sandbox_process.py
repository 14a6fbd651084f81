"""Untrusted SQL runs in a sandbox process: hostile rules never reach the host, memory bombs
and hangs cost one result each, what a rule or policy returns is capped, and a `type: sql`
rule's measured value is a number. Real `python -m checks run` processes throughout."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import psutil
import pytest

from catalog.store import connect
from checks.sandbox import SandboxResourceError, SandboxTimeout, inspect_sql
from checks.sandbox_process import IsolatedSandbox, SandboxWorker
from tests.test_checks_engine_fixtures import build_mesh

PROJECT = Path(__file__).resolve().parents[1]

CONTRACT = """\
apiVersion: v3.1.0
kind: DataContract
id: evil.host
name: Host Probes
version: 1.0.0
status: active
domain: Evil
dataProduct: Host Probes
servers:
  - server: local
    type: local
    format: parquet
    path: data/{{model}}.parquet
schema:
  - name: people
    physicalName: people
    physicalType: table
    properties:
      - name: id
        logicalType: integer
      - name: email
        logicalType: string
        classification: restricted
        tags: [pii]
    quality:
{rules}
"""


def _rules(rules: dict[str, str]) -> str:
    return "".join(f"      - id: {rule_id}\n        type: sql\n        query: {json.dumps(sql)}\n"
                   f"        mustBe: 0\n" for rule_id, sql in rules.items())


def _people() -> pd.DataFrame:
    return pd.DataFrame({"id": range(5), "email": [f"person{i}@secret.example" for i in range(5)]})


def _run_cli(db: Path, home: Path, *, timeout_s: float, policy_dir: Path | None = None,
             watch_rss: bool = False) -> tuple[subprocess.CompletedProcess, float, int]:
    """`python -m checks run --all --json` with a private HOME and an open, silent stdin
    (a rule reading /dev/stdin would wait forever); returns (process, seconds, peak RSS
    of the process and all its children, sampled every 20 ms)."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "HOME": str(home), "MESHGOV_LOCK_WAIT": "60"}
    env.pop("MESHGOV_POLICY_DIR", None)
    if policy_dir is not None:
        env["MESHGOV_POLICY_DIR"] = str(policy_dir)
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "checks", "run", "--all", "--db", str(db), "--json",
                             "--timeout", str(timeout_s)], cwd=PROJECT, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    peak = 0
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        root = psutil.Process(proc.pid)
        while not stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
                total = 0
                for member in tree:
                    try:
                        total += member.memory_info().rss
                    except psutil.Error:
                        pass
                peak = max(peak, total)
            except psutil.Error:
                return
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    if watch_rss:
        sampler.start()
    try:
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        stop.set()
        proc.kill()
    elapsed = time.monotonic() - started
    if watch_rss:
        sampler.join(5)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout.decode(), stderr.decode()), elapsed, peak


def _quality(stdout: str) -> dict[str, dict]:
    return {r["check_id"].rsplit("/", 1)[-1]: r for r in json.loads(stdout) if "/quality/" in r["check_id"]}


def test_checks_sandbox_process_host_probes_end_as_errors_and_touch_nothing(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    exported = tmp_path / "exported"
    rules = {
        "fifo": f"SELECT count(*) FROM read_csv('{fifo}')",
        "fifo_by_path": f"SELECT count(*) FROM '{fifo}'",
        "stdin": "SELECT count(*) FROM read_csv('/dev/stdin')",
        "export": f"EXPORT DATABASE '{exported}'",
        "https": "SELECT count(*) FROM read_csv('https://example.com/data.csv')",
        "https_by_path": "SELECT count(*) FROM 'https://example.com/data.parquet'",
        "secret": "CREATE SECRET leak (TYPE s3, KEY_ID 'k', SECRET 's')",
        "honest": "SELECT count(*) FROM people WHERE id < 0",
    }
    db = build_mesh(tmp_path, {"probes": CONTRACT.format(rules=_rules(rules))}, {"people": _people()})
    home = tmp_path / "home"
    home.mkdir()
    timeout_s = 5.0
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    done, elapsed, _ = _run_cli(db, home, timeout_s=timeout_s)
    assert done.returncode == 1, f"exit 1 (rules errored), not an engine failure: {done.stderr}"
    results = _quality(done.stdout)
    for rule in rules:
        if rule == "honest":
            continue
        assert results[rule]["status"] == "error" and results[rule]["reason"], \
            f"{rule} must end as an error with a reason: {results[rule]}"
    assert results["honest"]["status"] == "passed", results["honest"]["reason"]
    assert elapsed < 60, f"the run ended in {elapsed:.1f} s: nothing hung on the FIFO or stdin"
    assert not exported.exists(), "EXPORT DATABASE created its folder"
    assert list(home.iterdir()) == [], f"the run created {list(home.rglob('*'))} in HOME (extension downloads)"
    after = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert set(after) - set(before) <= {"catalog.duckdb.wal"}, f"new files: {set(after) - set(before)}"
    with connect(db, read_only=True) as con:
        state = con.execute("SELECT state FROM check_runs").fetchall()
    assert state == [("complete",)], f"the run is recorded complete, not left running: {state}"


def test_checks_sandbox_process_memory_bombs_are_errors_under_2gb(tmp_path):
    rules = {
        "range_bomb": "SELECT len(range(1e9::BIGINT))",
        "repeat_bomb": "SELECT length(repeat('x', 1500000000))",
        "list_bomb": "SELECT len(list(i)) FROM range(400000000) t(i)",
        "honest": "SELECT count(*) FROM people WHERE id < 0",
    }
    db = build_mesh(tmp_path, {"probes": CONTRACT.format(rules=_rules(rules))}, {"people": _people()})
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "bomb.sql").write_text("-- id: bomb\n-- title: Bomb\n-- severity: failed\n"
                                   "SELECT product_id, 'x' AS target, len(range(1e9::BIGINT))::VARCHAR AS reason "
                                   "FROM products\n")
    (pack / "after-bomb.sql").write_text("-- id: after-bomb\n-- title: After the bomb\n-- severity: warning\n"
                                         "SELECT product_id, 'x' AS target, 'y' AS reason FROM products "
                                         "WHERE product_id = 'none'\n")
    home = tmp_path / "home"
    home.mkdir()
    done, elapsed, peak = _run_cli(db, home, timeout_s=10.0, policy_dir=pack, watch_rss=True)
    assert done.returncode == 1, done.stderr
    results = _quality(done.stdout)
    for rule in ("range_bomb", "repeat_bomb", "list_bomb"):
        assert results[rule]["status"] == "error" and "memory" in results[rule]["reason"], results[rule]
    assert results["honest"]["status"] == "passed", "a bomb must not lose the other rules' results"
    policies = {r["check_id"]: r for r in json.loads(done.stdout) if r["kind"] == "policy"}
    bomb = policies["policy:bomb:host-probes"]
    assert bomb["status"] == "error" and "memory" in bomb["reason"], bomb
    assert policies["policy:after-bomb:host-probes"]["status"] == "passed", "the next policy still runs"
    assert peak < 2 * 2**30, f"peak RSS of the whole run was {peak / 2**30:.2f} GiB"
    print(f"memory bombs: run {elapsed:.1f} s, peak RSS of the process tree {peak / 2**20:.0f} MiB")


def test_checks_sandbox_process_text_value_and_huge_reason_are_not_stored(tmp_path):
    rules = {"emails": "SELECT string_agg(email, ',') FROM people",
             "as_number": "SELECT count(*)::DECIMAL(10, 2) FROM people WHERE id < 0"}
    db = build_mesh(tmp_path, {"probes": CONTRACT.format(rules=_rules(rules))}, {"people": _people()})
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "huge.sql").write_text("-- id: huge\n-- title: Huge reason\n-- severity: warning\n"
                                   "SELECT product_id, repeat('t', 100000) AS target, "
                                   "repeat('r', 20000000) AS reason FROM products\n")
    done, _, _ = _run_cli(db, tmp_path, timeout_s=20.0, policy_dir=pack)
    results = _quality(done.stdout)
    emails = results["emails"]
    assert emails["status"] == "error" and "must return a number" in emails["reason"], emails
    assert results["as_number"]["status"] == "passed", "a DECIMAL is a number"
    with connect(db, read_only=True) as con:
        stored = con.execute("SELECT check_id, reason, measured, diagnostics FROM check_results").fetchall()
        longest = con.execute("SELECT max(length(reason)), max(length(diagnostics)) FROM check_results").fetchone()
    assert "secret.example" not in json.dumps(stored, default=str), "no e-mail address reached the store"
    assert "secret.example" not in done.stdout, "nor the CLI output"
    assert longest[0] < 10_000 and longest[1] < 200_000, f"stored reason/diagnostics sizes {longest}"
    huge = next(r for r in json.loads(done.stdout) if r["check_id"] == "policy:huge:host-probes")
    assert huge["status"] == "warning" and len(huge["reason"]) < 10_000, len(huge["reason"])


def test_checks_sandbox_process_hung_child_is_killed_and_replaced(tmp_path):
    with SandboxWorker() as worker, IsolatedSandbox(worker, timeout_s=1.0) as box:
        box.load("people", _people())
        box.lock()
        assert box.query("SELECT count(*) AS n FROM people")["n"].tolist() == [5]
        first = worker.pid
        os.kill(first, signal.SIGSTOP)  # a child stuck where no interrupt reaches it
        started = time.monotonic()
        with pytest.raises(SandboxTimeout, match="killed"):
            box.query("SELECT count(*) FROM people")
        waited = time.monotonic() - started
        assert waited < 1.0 + 5, f"the parent killed the child {waited:.1f} s after the query started"
        assert not psutil.pid_exists(first) or psutil.Process(first).status() == psutil.STATUS_ZOMBIE
        again = box.query("SELECT count(*) AS n FROM people WHERE id > 1")
        assert again["n"].tolist() == [3], "a new child rebuilt the sandbox with its data"
        assert worker.pid != first
        with pytest.raises(SandboxResourceError, match="memory"):
            box.query("SELECT len(range(1e9::BIGINT))")
        assert box.query("SELECT count(*) AS n FROM people")["n"].tolist() == [5]


def test_checks_sandbox_inspection_parses_without_touching_anything(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    started = time.monotonic()
    seen = inspect_sql(f"SELECT * FROM read_csv('{fifo}') JOIN orders USING (id)")
    assert time.monotonic() - started < 5, "parsing never opens the FIFO"
    assert "orders" in seen.tables and any(f.lower() == "read_csv" for f in seen.functions), seen
    assert inspect_sql("EXPORT DATABASE 'x'").problem or inspect_sql("EXPORT DATABASE 'x'").statements != 1
