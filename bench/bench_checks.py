"""A product's checks end to end: `python -m checks run --product ID` as a whole process vs
hand-written DuckDB queries, same run (issue 15, item 0).

    .venv/bin/python bench/bench_checks.py [--rows 10000000] [--reps 5] [--data-dir DIR]
                                           [--plans] [--timeline] (--reps 0: the timeline only)

The suite (10 checks from one ODCS contract): order_id primary key (not null + unique) and a
`duplicateValues` rule on the same column, e-mail not null + an e-mail regex (`invalidValues`
with a pattern; ten rows of the data break it, so its failing-row sample is fetched), status
accepted values, amount range, quantity non-negative, created_at not null, freshness. The
contract's columns also give 8 schema/type checks, and a whole run adds the PII sample scan,
the policy pack and the write of the run: everything a user waits for.

Each repetition runs, interleaved and in rotating order so machine load hits all alike:
- `hand-written`: a fresh `python -c` process that imports duckdb and runs one query per
  distinct check (9 queries: the uniqueness answer serves both the primary key and
  `duplicateValues`, the stricter baseline), and prints the values;
- `meshgov cold`: the data file's mtime is bumped first, so nothing stored can be reused
  (the file's pages stay in the OS cache, as for the hand-written queries);
- `meshgov unchanged`: the same command right after, on the same file and contract: data-only
  checks reuse the stored measurement (freshness reruns).
Wall time is measured around the child process; CPU time (user + system, all threads) from
the children's rusage, steadier than wall time on a shared machine. Medians are reported,
with the ratio per repetition (both sides measured seconds apart) and its median.
`--plans` also times the compiler's three plans in process (the planner's evidence).
`--timeline` first runs one cold `checks run` in a process that marks when each phase starts
and ends (wall and CPU seconds since the process started: imports, the store read, the PII
sample, the policy pack in its thread, the data checks, the write) and lists the heavy
libraries it imported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ANCHORS = {"Great Expectations 1.x": 48.4, "Soda Core on DuckDB": 6.8}
STATUSES = ["new", "paid", "shipped", "delivered", "returned"]
EMAIL_PATTERN = r"^[a-z0-9._%+-]+@[a-z0-9.-]+\.[a-z]{2,}$"
PRODUCT_ID = "bench-orders"
BAD_EMAIL_EVERY = 1_000_000  # rows whose e-mail breaks the regex: the check fails, a sample is fetched

CONTRACT = f"""
apiVersion: v3.1.0
kind: DataContract
id: bench.orders
name: Bench Orders
version: 1.0.0
status: active
schema:
  - name: orders
    physicalName: orders
    properties:
      - name: order_id
        logicalType: integer
        primaryKey: true
        quality:
          - metric: duplicateValues
            mustBe: 0
      - name: customer_id
        logicalType: integer
      - name: email
        logicalType: string
        required: true
        quality:
          - metric: invalidValues
            arguments: {{pattern: '{EMAIL_PATTERN}'}}
            mustBe: 0
      - name: status
        logicalType: string
        quality:
          - metric: invalidValues
            arguments: {{validValues: {json.dumps(STATUSES)}}}
            mustBe: 0
      - name: amount
        logicalType: number
        logicalTypeOptions: {{minimum: 0, maximum: 10000}}
      - name: quantity
        logicalType: integer
        logicalTypeOptions: {{minimum: 0}}
      - name: created_at
        logicalType: timestamp
        required: true
slaProperties:
  - property: latency
    value: 3650
    unit: d
    element: orders.created_at
"""


def handwritten_queries(relation: str) -> list[str]:
    """One query per distinct check, as a person would write them (dbt-style uniqueness)."""
    in_list = ", ".join(f"'{s}'" for s in STATUSES)
    return [
        f"SELECT count(*) FROM {relation} WHERE order_id IS NULL",
        f"SELECT count(*) FROM (SELECT order_id FROM {relation} WHERE order_id IS NOT NULL "
        f"GROUP BY order_id HAVING count(*) > 1)",
        f"SELECT count(*) FROM {relation} WHERE email IS NULL",
        f"SELECT count(*) FROM {relation} WHERE NOT regexp_matches(email, '{EMAIL_PATTERN}')",
        f"SELECT count(*) FROM {relation} WHERE status NOT IN ({in_list})",
        f"SELECT count(*) FROM {relation} WHERE amount < 0 OR amount > 10000",
        f"SELECT count(*) FROM {relation} WHERE quantity < 0",
        f"SELECT count(*) FROM {relation} WHERE created_at IS NULL",
        f"SELECT max(created_at) FROM {relation}",
    ]


# --- data ------------------------------------------------------------------------------------------

def ensure_data(data_dir: Path, rows: int) -> Path:
    import duckdb

    path = data_dir / f"orders_e2e_{rows}.parquet"
    if path.exists():
        return path
    data_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    statuses = "[" + ", ".join(f"'{s}'" for s in STATUSES) + "]"
    tmp = path.with_suffix(".tmp")
    with duckdb.connect() as con:
        con.execute(f"""
            COPY (
              SELECT i AS order_id,
                     (hash(i) % 500000)::BIGINT AS customer_id,
                     CASE WHEN i % {BAD_EMAIL_EVERY} = 7 THEN 'not an e-mail #' || i::VARCHAR
                          ELSE 'user' || (hash(i * 7) % 900000)::VARCHAR || '@example.'
                               || (['com', 'org', 'net'])[1 + (i % 3)::INT] END AS email,
                     ({statuses})[1 + (hash(i * 3) % 5)::INT] AS status,
                     round((hash(i * 11) % 1000000) / 100.0, 2) AS amount,
                     (hash(i * 13) % 20)::INT AS quantity,
                     TIMESTAMP '2026-01-01' + to_seconds((i * 2)::BIGINT) AS created_at,
                     (['DE', 'FR', 'NL', 'PL', 'ES'])[1 + (i % 5)::INT] AS country
              FROM range({int(rows)}) t(i)
            ) TO '{tmp}' (FORMAT parquet)""")
    tmp.rename(path)
    print(f"generated {path} ({rows:,} rows) in {time.perf_counter() - started:.1f} s", flush=True)
    return path


def ensure_csv(data_dir: Path, parquet: Path, rows: int) -> Path:
    import duckdb

    path = data_dir / f"orders_{rows}.csv"
    if not path.exists():
        with duckdb.connect() as con:
            con.execute(f"COPY (SELECT * FROM read_parquet('{parquet}') LIMIT {int(rows)}) TO '{path}' (HEADER)")
    return path


# --- the catalog holding the bench contract ------------------------------------------------------

def ensure_catalog(data_dir: Path, parquet: Path) -> Path:
    """A fresh store next to the data (the default data root is the store's folder)."""
    import yaml

    from catalog.ingest import ingest_paths
    from catalog.store import connect

    folder = data_dir / f"catalog_{parquet.stem}"
    folder.mkdir(parents=True, exist_ok=True)
    db = folder / "catalog.duckdb"
    for old in folder.glob("catalog.duckdb*"):
        old.unlink()
    doc = yaml.safe_load(CONTRACT)
    doc["dataProduct"] = PRODUCT_ID
    doc["servers"] = [{"server": "local", "type": "local", "format": "parquet", "path": str(parquet)}]
    contract = folder / "bench.yaml"
    contract.write_text(yaml.safe_dump(doc, sort_keys=False))
    with connect(db) as con:
        report = ingest_paths(con, [contract], actor="bench")
        products = [r[0] for r in con.execute("SELECT product_id FROM products").fetchall()]
    if products != [PRODUCT_ID]:
        raise SystemExit(f"the bench contract did not ingest as {PRODUCT_ID}: {products} {report}")
    return db


# --- the timed processes ----------------------------------------------------------------------------

HANDWRITTEN = """
import sys, duckdb
con = duckdb.connect()
values = [con.execute(q).fetchone()[0] for q in {queries!r}]
print(values)
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], *, env: dict | None = None) -> dict:
    """Wall and CPU seconds of one whole child process, and its output."""
    cpu = _children_cpu()
    started = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=3600, env=env)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "cpu": _children_cpu() - cpu, "rc": proc.returncode,
            "stdout": proc.stdout, "stderr": proc.stderr}


def run_handwritten(parquet: Path) -> dict:
    code = HANDWRITTEN.format(queries=handwritten_queries(f"read_parquet('{parquet}')"))
    report = timed([sys.executable, "-c", code])
    if report["rc"] != 0:
        raise SystemExit(f"hand-written queries failed:\n{report['stderr']}")
    return report


def run_meshgov(db: Path) -> dict:
    """`python -m checks run --product ID` as a user runs it (with --json, to read the results)."""
    env = {**os.environ, "MESHGOV_DATA_ROOTS": str(db.parent.parent)}
    report = timed([sys.executable, "-m", "checks", "run", "--product", PRODUCT_ID, "--db", str(db),
                    "--as", "bench", "--json"], env=env)
    if report["rc"] not in (0, 1):
        raise SystemExit(f"checks run exited {report['rc']}:\n{report['stderr']}")
    report["results"] = json.loads(report["stdout"])
    return report


def bump_mtime(path: Path) -> None:
    """New data as far as any fingerprint can tell, same bytes (and the same OS page cache)."""
    now = time.time()
    os.utime(path, (now, now))


def compare(parquet: Path, db: Path, reps: int) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {"hand-written": [], "meshgov cold": [], "meshgov unchanged": []}

    def cold() -> None:
        bump_mtime(parquet)
        runs["meshgov cold"].append(run_meshgov(db))
        runs["meshgov unchanged"].append(run_meshgov(db))

    def hand() -> None:
        runs["hand-written"].append(run_handwritten(parquet))

    run_meshgov(db)  # warm-up: page cache, .pyc files, the store's first run
    for rep in range(reps):
        # Alternate who goes first so drift in machine load hits both sides alike.
        for step in ((hand, cold) if rep % 2 == 0 else (cold, hand)):
            step()
        print(f"    rep {rep + 1}: " + ", ".join(f"{name} {bucket[-1]['seconds']:.2f} s / {bucket[-1]['cpu']:.2f} s CPU"
                                             for name, bucket in runs.items()), flush=True)
    return runs


def _median(reports: list[dict], key: str = "seconds") -> float:
    return statistics.median(r[key] for r in reports)


def _per_check(report: dict) -> str:
    timed_checks = sorted(((r["diagnostics"].get("seconds") or 0.0, r["check_id"].split("/", 1)[-1])
                           for r in report["results"] if isinstance(r.get("diagnostics"), dict)), reverse=True)
    return ", ".join(f"{name} {seconds:.2f}" for seconds, name in timed_checks[:6] if seconds >= 0.01)


# --- where a cold run's time goes ---------------------------------------------------------------------

TIMELINE = r"""
import resource, sys, time
T0 = time.perf_counter()
marks = []


def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def mark(what, since=None, cpu_since=None):
    marks.append((what, since, cpu_since, time.perf_counter() - T0, cpu()))


def timed(module, name):
    real = getattr(module, name)

    def wrapper(*args, **kwargs):
        since, cpu_since = time.perf_counter() - T0, cpu()
        try:
            return real(*args, **kwargs)
        finally:
            mark(f"{module.__name__.split('.')[-1]}.{name}", since, cpu_since)
    setattr(module, name, wrapper)


mark("interpreter started")
from checks import cli, sandbox_process
mark("imported checks.cli")
real_start = sandbox_process.SandboxWorker.start


def start(self):
    if self._proc is None:
        mark("sandbox process spawned")
    return real_start(self)


sandbox_process.SandboxWorker.start = start
real_main = cli._main


def main(argv, worker):
    from checks import measure, pii, reuse, runner
    mark("imported the engine")
    for name in ("_read_work", "_policy_snapshot", "_build_work", "sample_rows", "_policy_results", "persist"):
        timed(runner, name)
    timed(reuse, "load_prior")
    timed(pii, "scan")
    timed(measure, "run_dataset")
    return real_main(argv, worker)


cli._main = main
code = cli.main(sys.argv[1:])
mark("run done")
children = resource.getrusage(resource.RUSAGE_CHILDREN)
for what, since, cpu_since, until, cpu_until in marks:
    if since is None:
        print(f"  {until:7.3f} s  (CPU {cpu_until:6.3f} s)  {what}", file=sys.stderr)
    else:
        print(f"  {since:7.3f} s .. {until:7.3f} s  ({until - since:6.3f} s wall, {cpu_until - cpu_since:6.3f} s CPU)"
              f"  {what}", file=sys.stderr)
heavy = [m for m in ("pandas", "pyarrow", "numpy", "sqlglot", "jsonschema", "streamlit", "pydantic") if m in sys.modules]
print(f"  sandbox process CPU {children.ru_utime + children.ru_stime:.3f} s; heavy libraries imported: "
      f"{', '.join(heavy) or 'none'}", file=sys.stderr)
"""


def timeline(parquet: Path, db: Path) -> None:
    """One cold run with its phases marked (wall and CPU since the process started)."""
    bump_mtime(parquet)
    env = {**os.environ, "MESHGOV_DATA_ROOTS": str(db.parent.parent)}
    proc = subprocess.run([sys.executable, "-c", TIMELINE, "run", "--product", PRODUCT_ID, "--db", str(db),
                           "--as", "bench", "--json"], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=3600)
    print(f"timeline of a cold run (load average {os.getloadavg()[0]:.1f}):")
    print(proc.stderr.rstrip())


# --- in-process plans (the compiler's evidence) ------------------------------------------------------

def _specs():
    from catalog import odcs
    from checks import compiler
    from checks.specs import contract_specs

    model = odcs.parse(odcs.load_yaml(CONTRACT))
    return [s for s in contract_specs(model, product_id="bench") if s.metric in compiler.DATA_METRICS]


def worker_plan(path: str, kind: str, plan: str) -> dict:
    from catalog.locations import Location
    from checks import measure

    specs = _specs()
    target = measure.DatasetTarget("bench", "orders", Location(kind, path, None))
    started = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    results = measure.run_dataset(specs, target, plan=plan, timeout_s=600)
    after = resource.getrusage(resource.RUSAGE_SELF)
    return {"seconds": time.perf_counter() - started, "checks": len(results),
            "cpu": after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime}


def _plan_child(path: Path, kind: str, plan: str) -> dict:
    proc = subprocess.run([sys.executable, __file__, "--worker", str(path), kind, plan], capture_output=True,
                          text=True, cwd=ROOT, timeout=3600)
    if proc.returncode != 0:
        raise SystemExit(f"plan worker failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--data-dir", default=os.environ.get("MESHGOV_BENCH_DIR", "/tmp/meshgov-bench"))
    parser.add_argument("--plans", action="store_true", help="also time every compiler plan (Parquet and CSV)")
    parser.add_argument("--timeline", action="store_true", help="first time the phases of one cold run")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker:
        print(json.dumps(worker_plan(*args.worker)))
        return

    data_dir = Path(args.data_dir)
    parquet = ensure_data(data_dir, args.rows)
    db = ensure_catalog(data_dir, parquet)
    if args.timeline:
        run_meshgov(db)  # the store's first run, .pyc files
        timeline(parquet, db)
        if args.reps == 0:
            return
    print(f"`python -m checks run --product {PRODUCT_ID}` on {parquet} ({args.rows:,} rows) vs hand-written "
          f"DuckDB, {args.reps} interleaved repetitions, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start", flush=True)
    runs = compare(parquet, db, args.reps)
    hand = runs["hand-written"]
    for name, reports in runs.items():
        print(f"  {name:<18} wall median {_median(reports):5.2f} s  CPU median {_median(reports, 'cpu'):5.2f} s  "
              f"runs {[round(r['seconds'], 2) for r in reports]}")
    for name in ("meshgov cold", "meshgov unchanged"):
        mesh = runs[name]
        paired = [m["seconds"] / h["seconds"] for m, h in zip(mesh, hand, strict=True)]
        paired_cpu = [m["cpu"] / h["cpu"] for m, h in zip(mesh, hand, strict=True)]
        goal = "<= 1.2x" if name.endswith("cold") else "< 1.0x"
        print(f"  ratio {name} / hand-written: wall {_median(mesh) / _median(hand):.2f}x of medians, "
              f"{statistics.median(paired):.2f}x median of paired reps; CPU {_median(mesh, 'cpu') / _median(hand, 'cpu'):.2f}x"
              f"  (goal {goal})  paired {[round(x, 2) for x in paired]} CPU {[round(x, 2) for x in paired_cpu]}")
    last_cold, last_unchanged = runs["meshgov cold"][-1], runs["meshgov unchanged"][-1]
    statuses = [r["status"] for r in last_cold["results"]]
    reused = [r for r in last_unchanged["results"] if (r.get("diagnostics") or {}).get("reused_from")]
    print(f"  last cold run: {len(statuses)} results ({', '.join(f'{statuses.count(s)} {s}' for s in sorted(set(statuses)))}); "
          f"slowest checks (s): {_per_check(last_cold)}")
    print(f"  last unchanged run: {len(reused)} of {len(last_unchanged['results'])} results reused from an earlier run")
    same = [(a["check_id"], a["status"], a["measured"]) for a in last_cold["results"]] == \
        [(b["check_id"], b["status"], b["measured"]) for b in last_unchanged["results"]]
    print(f"  cold and unchanged runs give the same statuses and values: {same}")
    print(f"  load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())} on {os.cpu_count()} cores")
    for name, seconds in ANCHORS.items():
        print(f"  anchor {name}: {seconds:.1f} s at 10M rows (suite only, not a whole process)")

    if args.plans:
        csv_rows = min(args.rows, 1_000_000)
        csv = ensure_csv(data_dir, parquet, csv_rows)
        for label, path, kind in (("Parquet", parquet, "parquet"), (f"CSV ({csv_rows:,} rows)", csv, "csv")):
            line = []
            for plan in ("per_check", "single_pass", "materialise"):
                reports = [_plan_child(path, kind, plan) for _ in range(max(1, args.reps // 2))]
                line.append(f"{plan} {_median(reports):.2f} s wall / {_median(reports, 'cpu'):.2f} s CPU")
            print(f"plans on {label}: " + ", ".join(line))


if __name__ == "__main__":
    main()
