"""Cost of opening the store, against the goal of issue 10 (store.connect median < 2 ms).

Prints the median of N opens of the seeded demo store through `catalog.store.connect`
(queue lock + DuckDB open + schema check), a raw `duckdb.connect` of the same file, and a
cursor on an already open connection, all in the same run; then an overview rerun (AppTest).

    .venv/bin/python bench/bench_store.py [--db data/meshgov.duckdb] [--n 50]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from catalog import store  # noqa: E402


def median_ms(work, n: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(ROOT / "data" / "meshgov.duckdb"))
    parser.add_argument("--n", type=int, default=50)
    args = parser.parse_args()
    db = Path(args.db)
    if not db.exists():
        sys.exit(f"{db} does not exist: seed it with `python -m sample_data seed --db {db}`")

    def via_store():
        with store.connect(db) as con:
            con.execute("SELECT 1").fetchone()

    def raw():
        con = duckdb.connect(str(db), config={"autoinstall_known_extensions": False,
                                              "autoload_known_extensions": False})
        con.execute("SELECT 1").fetchone()
        con.close()

    held = duckdb.connect(str(db), config={"autoinstall_known_extensions": False,
                                           "autoload_known_extensions": False})

    def cursor():
        cur = held.cursor()
        cur.execute("SELECT 1").fetchone()
        cur.close()

    cursor_ms = median_ms(cursor, args.n)
    held.close()
    store_ms, raw_ms = median_ms(via_store, args.n), median_ms(raw, args.n)
    print(f"store.connect      median {store_ms:7.2f} ms   (goal < 2 ms; before this change ~43.5 ms)")
    print(f"raw duckdb.connect median {raw_ms:7.2f} ms   (the floor for a short connection)")
    print(f"cursor on open con median {cursor_ms:7.2f} ms")

    import os

    from streamlit.testing.v1 import AppTest
    os.environ["MESHGOV_DB"] = str(db)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    started = time.perf_counter()
    at.run()
    first = time.perf_counter() - started
    reruns = []
    for _ in range(5):
        started = time.perf_counter()
        at.run()
        reruns.append(time.perf_counter() - started)
    print(f"overview (AppTest) first render {first:.2f} s, rerun median {statistics.median(reruns):.2f} s")


if __name__ == "__main__":
    main()
