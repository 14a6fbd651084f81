"""The overview at scale: server-side render of the overview page (AppTest), first and rerun.

    .venv/bin/python bench/bench_overview.py --db big.duckdb            # a DB seeded with --products N
    .venv/bin/python bench/bench_overview.py --products 2000            # seed one in a temp folder first
    .venv/bin/python bench/bench_overview.py --db big.duckdb --results  # plus one check run over all products
    .venv/bin/python bench/bench_overview.py --db demo.duckdb --bulk 10000 --results  # fast stand-in, see below

Target (issue 12, item 3): with a 10k-product catalog the overview renders server side in < 1 s
on a rerun. Build the catalog with `python -m sample_data seed --products 10000` (the real ingest
path). The bench works on a copy of the DB, so `--results` (one complete check run with 8 results
per product, inserted directly, statuses spread like a real mesh: mostly passed, some failed,
warning, error) leaves the original alone; without it the synthetic products are never checked
and only the seeded demo products have results.

`--bulk N` adds N products by direct INSERTs (bench_search's generator: products, owners, one
dataset, 20 columns each; no contract rows, no lineage) to the copy: a stand-in when the real
`seed --products 10000` is too slow on a busy machine (it took 8-9 min quiet, 49 ms a contract).
Those products score 0 on the contract and lineage components.

Prints: products; the posture computation alone, uncached (components + scores + trend; median
of 3); the first AppTest render (cold caches: imports, lineage graph, posture, figures); the
median and worst of 5 reruns (what a click or a widget change costs); a rerun right after the
store changed (a new check run: the posture is recomputed). The machine's load average is printed
beside them: the 2 cores are shared.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from catalog import check_totals  # noqa: E402
from catalog.store import connect  # noqa: E402
from checks import posture  # noqa: E402

TARGET_RERUN_S = 1.0
STATUSES = ["passed"] * 6 + ["failed", "warning"]  # per product: 8 results, one failed, one warning


def _load() -> str:
    return " / ".join(f"{x:.1f}" for x in os.getloadavg())


def add_run(db: Path, *, run_id: str, at: datetime) -> int:
    """One complete check run with 8 results for every product (one product in 50 errors instead)."""
    with connect(db) as con:
        con.execute("INSERT INTO check_runs (run_id, started_at, finished_at, state, triggered_by)"
                    " VALUES (?, ?, ?, 'complete', 'bench')", [run_id, at, at])
        con.execute("""
            INSERT INTO check_results (run_id, check_id, kind, product_id, target, status, reason, started_at, finished_at)
            SELECT ?, p.product_id || '/bench/' || s.i, 'quality', p.product_id, p.product_id,
                   CASE WHEN s.i = 7 AND hash(p.product_id) % 50 = 0 THEN 'error'
                        ELSE (?)[s.i + 1] END, 'bench', ?, ?
            FROM products p, range(8) s(i)""", [run_id, STATUSES, at, at])
        check_totals.write(con, [run_id])  # as checks.run_records.persist stores a run
        return con.execute("SELECT count(*) FROM check_results WHERE run_id = ?", [run_id]).fetchone()[0]


def posture_alone(db: Path) -> float:
    times = []
    for _ in range(3):
        with connect(db) as con:
            started = time.perf_counter()
            posture.scores(posture.components(con))
            posture.trend(con, days=35)
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a seeded store (copied; left unchanged)")
    parser.add_argument("--products", type=int, default=0, help="without --db: seed the demo plus N products")
    parser.add_argument("--bulk", type=int, default=0, help="add N products by direct INSERTs (no contracts)")
    parser.add_argument("--results", action="store_true", help="add one check run over every product first")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-overview-"))
    try:
        db = work / "meshgov.duckdb"
        if args.db:
            shutil.copyfile(args.db, db)
        else:
            from sample_data import generate

            started = time.perf_counter()
            generate.seed(db, extra_products=args.products, out_dir=work / "sample")
            print(f"seeded demo + {args.products} products in {time.perf_counter() - started:.1f} s")
        if args.bulk:
            import bench_search

            frames = bench_search.build_frames(args.bulk, 20)
            with connect(db) as con:
                known = {r[0] for r in con.execute("SELECT domain_id FROM domains").fetchall()}
                frames["domains"] = frames["domains"][~frames["domains"]["domain_id"].isin(known)]
                bench_search.load(con, frames)
            print(f"bulk: {args.bulk:,} products added by INSERTs")
        now = datetime.utcnow().replace(microsecond=0)  # noqa: DTZ003 - the store keeps naive UTC
        if args.results:
            print(f"bench check run: {add_run(db, run_id='bench-run-1', at=now - timedelta(hours=1)):,} results")
        with connect(db) as con:
            products = con.execute("SELECT count(*) FROM products").fetchone()[0]
        print(f"products: {products:,}   load average: {_load()}")
        print(f"posture alone (components + scores + trend, uncached, median of 3): {posture_alone(db):.2f} s")

        os.environ["MESHGOV_DB"] = str(db)
        from streamlit.testing.v1 import AppTest
        from streamlit.testing.v1.util import patch_config_options

        with patch_config_options({"server.address": "127.0.0.1"}):
            at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300)
            started = time.perf_counter()
            at.run()
            first = time.perf_counter() - started
            if at.exception:
                print("the page raised:", [e.value for e in at.exception])
                return 2
            reruns = []
            for _ in range(5):
                started = time.perf_counter()
                at.run()
                reruns.append(time.perf_counter() - started)
            add_run(db, run_id="bench-run-2", at=now)
            time.sleep(5.1)  # the store fingerprint is cached for 5 s
            started = time.perf_counter()
            at.run()
            changed = time.perf_counter() - started
        rerun = statistics.median(reruns)
        print(f"AppTest first render: {first:.2f} s (cold: imports, lineage graph, posture, figures)")
        print(f"AppTest rerun: median {rerun:.3f} s, worst {max(reruns):.3f} s of 5   load average: {_load()}")
        print(f"AppTest rerun after a new check run (posture recomputed): {changed:.2f} s")
        verdict = "met" if rerun < TARGET_RERUN_S else "NOT met"
        print(f"target: rerun < {TARGET_RERUN_S:.0f} s at 10k products -> {verdict} at {products:,} products")
        return 0 if rerun < TARGET_RERUN_S else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
