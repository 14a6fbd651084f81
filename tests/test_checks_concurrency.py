"""Concurrent `python -m checks run --all` processes on one DB all finish: the store's lock is
held only to read the work and to persist, and waiters queue instead of racing. (The full
measurement — the app, 20 runs and 5 ingests together — is bench/bench_concurrency.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from catalog.store import connect
from tests.test_checks_engine_fixtures import build_mesh, orders_frame

PROJECT = Path(__file__).resolve().parents[1]
RUNS = 6


def test_checks_concurrency_parallel_runs_all_complete_without_lock_errors(tmp_path):
    db = build_mesh(tmp_path, {"shop": "shop.yaml"}, {"orders": orders_frame()})
    # A short wait would have made the old retry loop give up; the queue needs no more.
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "MESHGOV_LOCK_WAIT": "60"}
    command = [sys.executable, "-m", "checks", "run", "--all", "--db", str(db), "--json"]
    started = time.monotonic()
    procs = [subprocess.Popen(command, cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(RUNS)]
    outputs = [p.communicate(timeout=600) for p in procs]
    elapsed = time.monotonic() - started
    for proc, (_stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 1, f"exit 1 (the shop has findings), not 2: {stderr}"
        assert "lock" not in stderr.lower(), stderr
    returned = sorted(len(json.loads(stdout)) for stdout, _ in outputs)
    with connect(db, read_only=True) as con:
        runs = con.execute("SELECT r.run_id, r.state, count(c.check_id) FROM check_runs r "
                           "LEFT JOIN check_results c USING (run_id) GROUP BY ALL").fetchall()
    assert len(runs) == RUNS and all(state == "complete" for _, state, _ in runs), runs
    stored = sorted(count for *_, count in runs)
    assert stored == returned and len(set(stored)) == 1, f"every run stored all its results: {stored} vs {returned}"
    print(f"{RUNS} concurrent runs: {elapsed:.1f} s, {stored[0]} results each")
