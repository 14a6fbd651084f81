"""The app, 20 concurrent `checks run --all` and 5 ingests on one DB: does every run finish?

    .venv/bin/python bench/bench_concurrency.py                 # seed a fresh demo mesh in a temp folder
    .venv/bin/python bench/bench_concurrency.py --runs 8 --ingests 2 --db /tmp/x/seed.duckdb  # reuse a seeded DB

Anchor (issue 9.4): with the app up, 20 concurrent runs and 5 ingests, 6 of 60 runs exited 2
after waiting 60 s for the lock. Target: every run completes — N complete runs, 0 lock
errors, 0 lost results (each run's stored result count equals what it printed).

- **DB.** `python -m sample_data seed` (the demo mesh: ~300 checks a run, contract SQL rules and
  the policy pack), unless `--db` names a seeded file.
- **App.** One process renders the app's default page (the overview) with Streamlit's
  AppTest in a loop, so it opens the store the way the app does (ui.db.conn: a cursor per
  use on the instance the process holds, let go when another process queues or after
  `MESHGOV_STORE_HOLD` idle seconds) — there is no browser here to drive a served app.
- **Runs.** `--runs` processes of `python -m checks run --all --json`, started together,
  `MESHGOV_LOCK_WAIT` at its default (60 s).
- **Ingests.** `--ingests` processes of `python -m catalog ingest <contracts folder>`, each
  repeated `--ingest-rounds` times while the runs go.

Prints per-run wall time, exit codes, lock errors, stored vs printed result counts, app
renders and errors; exit code 0 when every run completed with all its results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

APP_LOOP = """
import os, sys, time
from streamlit.testing.v1 import AppTest
deadline = time.monotonic() + float(sys.argv[2])
renders = errors = 0
slowest = 0.0
while time.monotonic() < deadline and not os.path.exists(sys.argv[3]):
    began = time.monotonic()
    try:
        at = AppTest.from_file(sys.argv[1], default_timeout=600).run()
        failed = [str(e.value)[:200] for e in at.exception]
    except Exception as exc:  # AppTest's own time limit: count it, keep going
        failed = [f"{type(exc).__name__}: {exc}"[:200]]
    slowest = max(slowest, time.monotonic() - began)
    renders += 1
    if failed:
        errors += 1
        print("app error:", failed, file=sys.stderr, flush=True)
print(f"{renders} renders, {errors} with errors, slowest {slowest:.1f} s")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--ingests", type=int, default=5)
    parser.add_argument("--ingest-rounds", type=int, default=2)
    parser.add_argument("--db", help="a seeded DB to use (default: seed one in a temp folder)")
    parser.add_argument("--no-app", action="store_true", help="leave the app out")
    args = parser.parse_args()
    python = sys.executable
    env = {**os.environ, "PYTHONPATH": str(PROJECT)}
    env.pop("MESHGOV_LOCK_WAIT", None)
    work = Path(tempfile.mkdtemp(prefix="meshgov-bench-concurrency-"))
    if args.db:
        db = Path(args.db).resolve()
        contracts = db.parent / "sample" / "contracts"
        if not contracts.is_dir():
            contracts = next(db.parent.rglob("contracts"))
    else:
        db = work / "seed.duckdb"
        started = time.monotonic()
        subprocess.run([python, "-m", "catalog", "seed", "--db", str(db), "--out", str(work / "sample")],
                       cwd=PROJECT, env=env, check=True, stdout=subprocess.DEVNULL)
        print(f"seeded {db} in {time.monotonic() - started:.1f} s")
        contracts = work / "sample" / "contracts"
    env["MESHGOV_DB"] = str(db)
    stop_file = work / "stop"

    app = None
    if not args.no_app:
        app = subprocess.Popen([python, "-c", APP_LOOP, str(PROJECT / "app.py"), "3600", str(stop_file)],
                               cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)  # the app is up before the gates start
    started = time.monotonic()
    runs = [(subprocess.Popen([python, "-m", "checks", "run", "--all", "--db", str(db), "--json"],
                              cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True),
             time.monotonic()) for _ in range(args.runs)]
    ingest_script = ("import subprocess, sys\n"
                     "codes = [subprocess.run([sys.executable, '-m', 'catalog', 'ingest', sys.argv[1], '--db', "
                     "sys.argv[2]], capture_output=True, text=True) for _ in range(int(sys.argv[3]))]\n"
                     "print(' '.join(str(c.returncode) for c in codes))\n"
                     "[print(c.stderr[-300:], file=sys.stderr) for c in codes if c.returncode]\n")
    ingests = [subprocess.Popen([python, "-c", ingest_script, str(contracts), str(db), str(args.ingest_rounds)],
                                cwd=PROJECT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(args.ingests)]
    outcomes = []
    for proc, began in runs:
        stdout, stderr = proc.communicate()
        outcomes.append((proc.returncode, time.monotonic() - began, stdout, stderr))
    ingest_out = [p.communicate() for p in ingests]
    total = time.monotonic() - started
    stop_file.write_text("stop")
    app_out = app.communicate(timeout=300) if app else ("", "")

    lock_errors = sum(1 for code, _, _, err in outcomes if code == 2 and "lock" in err.lower())
    other_errors = [(code, err.strip()[-300:]) for code, _, _, err in outcomes if code not in (0, 1)]
    printed: dict[str, int] = {}
    for code, _, out, _ in outcomes:
        try:
            results = json.loads(out) if code in (0, 1) else []
        except ValueError:
            results = []
        if results:
            printed[results[0]["run_id"]] = len(results)
    from catalog.store import connect

    with connect(db, read_only=True) as con:  # only this bench's runs (a reused DB has older ones)
        stored = con.execute("SELECT r.state, count(c.check_id) FROM check_runs r LEFT JOIN check_results c "
                             "USING (run_id) WHERE list_contains(?, r.run_id) GROUP BY r.run_id, r.state",
                             [list(printed)]).fetchall()
    complete = [count for state, count in stored if state == "complete"]
    lost = sorted(printed.values()) != sorted(complete)
    seconds = [t for _, t, _, _ in outcomes]
    print(f"{args.runs} runs + {args.ingests} ingests x {args.ingest_rounds}"
          f"{'' if args.no_app else ' + the app'}: all done in {total:.1f} s")
    print(f"  run wall time: median {statistics.median(seconds):.1f} s, max {max(seconds):.1f} s")
    print(f"  exit codes: {sorted(code for code, *_ in outcomes)}")
    print(f"  complete runs stored: {len(complete)}; states: {sorted({s for s, _ in stored})}")
    print(f"  lock errors: {lock_errors}; other engine errors: {len(other_errors)} {other_errors[:2]}")
    print(f"  results printed per run: {sorted(set(printed.values()))}; "
          f"stored per complete run: {sorted(set(complete))}; lost results: {'yes' if lost else 'none'}")
    print(f"  ingest exit codes: {[o.strip() for o, _ in ingest_out]}")
    if any(e.strip() for _, e in ingest_out):
        print("  ingest stderr:", [e.strip()[-200:] for _, e in ingest_out if e.strip()][:2])
    if app:
        print(f"  app: {app_out[0].strip()}; last app error: {app_out[1].strip()[-300:]!r}")
    ok = len(complete) == args.runs and lock_errors == 0 and not other_errors and not lost
    print("verdict:", "PASS" if ok else "FAIL", "(every run complete, no lock error, no lost result)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
