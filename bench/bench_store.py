"""Cost of opening the store, against the goal of issue 10 (store.connect median < 2 ms).

All in one run, on the seeded demo store:
- `catalog.store.connect` as it is now (a cursor on the instance the process holds), N uses;
- the same with MESHGOV_STORE_HOLD=0 (close after every use: the behaviour before), N uses;
- a raw `duckdb.connect` of the file, and a cursor on an already open connection;
- an overview rerun (AppTest), with how many store uses a rerun makes and what they cost.

    .venv/bin/python bench/bench_store.py [--db data/meshgov.duckdb] [--n 50] [--reruns 5]
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import duckdb  # noqa: E402

from catalog import store  # noqa: E402

CPU_MS: dict[str, list[float]] = {}  # per measured function: CPU time of each call (all threads)


def timed_ms(work, n: int) -> list[float]:
    times = []
    for _ in range(n):
        cpu, started = time.process_time(), time.perf_counter()
        work()
        times.append((time.perf_counter() - started) * 1000)
        CPU_MS.setdefault(work.__name__, []).append((time.process_time() - cpu) * 1000)
    return times


def cpu_median(work) -> float:
    return statistics.median(CPU_MS[work.__name__])


def cpu_and_wall(work) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", default=str(ROOT / "data" / "meshgov.duckdb"))
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--reruns", type=int, default=5)
    args = parser.parse_args()
    db = Path(args.db)
    if not db.exists():
        sys.exit(f"{db} does not exist: seed it with `python -m sample_data seed --db {db}`")
    os.environ.setdefault("MESHGOV_STORE_HOLD", str(store.HOLD_SECONDS))

    def use_store():
        with store.connect(db) as con:
            con.execute("SELECT 1").fetchone()

    def raw():
        con = duckdb.connect(str(db))
        con.execute("SELECT 1").fetchone()
        con.close()

    # Each pair of measures alternates in one loop, so both see the same machine load.
    store.release()
    first_ms = timed_ms(use_store, 1)[0]
    open_con = duckdb.connect(str(db))  # same configuration: shares the instance the store holds

    def cursor():
        cur = open_con.cursor()
        cur.execute("SELECT 1").fetchone()
        cur.close()

    held_times, cursor_times = [], []
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(args.n):
        held_times += timed_ms(use_store, 1)
        cursor_times += timed_ms(cursor, 1)
    held_cpu, held_wall = time.process_time() - cpu, time.perf_counter() - wall
    open_con.close()
    store.release()
    os.environ["MESHGOV_STORE_HOLD"] = "0"
    short_times, raw_times = [], []
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(args.n):
        short_times += timed_ms(use_store, 1)
        raw_times += timed_ms(raw, 1)
    short_cpu, short_wall = time.process_time() - cpu, time.perf_counter() - wall
    os.environ["MESHGOV_STORE_HOLD"] = str(store.HOLD_SECONDS)
    held_cpu_ms, short_cpu_ms = statistics.median(CPU_MS["use_store"][1:args.n + 1]), \
        statistics.median(CPU_MS["use_store"][args.n + 1:])
    print(f"store.connect, held instance   median {statistics.median(held_times):7.2f} ms, "
          f"CPU {held_cpu_ms:.2f} ms (first use, opening: {first_ms:.1f} ms)   goal < 2 ms")
    print(f"  cursor on an open connection median {statistics.median(cursor_times):7.2f} ms, "
          f"CPU {cpu_median(cursor):.2f} ms (these {2 * args.n} measures: {held_wall:.2f} s wall, "
          f"{held_cpu:.2f} s CPU)")
    print(f"store.connect, hold 0 (before) median {statistics.median(short_times):7.2f} ms, "
          f"CPU {short_cpu_ms:.2f} ms")
    print(f"  raw duckdb.connect           median {statistics.median(raw_times):7.2f} ms, "
          f"CPU {cpu_median(raw):.2f} ms (these {2 * args.n} measures: {short_wall:.2f} s wall, "
          f"{short_cpu:.2f} s CPU)")
    print(f"load average {os.getloadavg()[0]:.1f}")

    # The overview: how many store uses a rerun makes, and their cost. (ui.db imports
    # `connect` by name when the app first runs, so the counting wrapper goes in first.)
    os.environ.setdefault("STREAMLIT_LOGGER_LEVEL", "error")  # no cache-storage notices between lines
    from streamlit import logger as streamlit_logger
    from streamlit.testing.v1 import AppTest

    streamlit_logger.set_log_level("error")
    logging.disable(logging.WARNING)  # AppTest's per-run cache-storage notices

    uses: list[float] = []
    real_connect = store.connect

    def counting_connect(*a, **kw):
        started = time.perf_counter()
        cm = real_connect(*a, **kw)
        con = cm.__enter__()
        uses.append((time.perf_counter() - started) * 1000)
        return _Entered(cm, con)

    store.connect = counting_connect
    os.environ["MESHGOV_DB"] = str(db)
    import streamlit as st

    AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()  # imports, not measured
    for hold in ("0", str(store.HOLD_SECONDS)):
        store.release()
        os.environ["MESHGOV_STORE_HOLD"] = hold
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.run()
        assert not at.exception, at.exception
        label = "hold 0 (before)" if hold == "0" else f"held ({hold} s)"
        for cold in (False, True):  # cold: st.cache_data cleared, so every loader reads the store
            uses.clear()
            walls, cpus = [], []
            for _ in range(args.reruns):
                if cold:
                    st.cache_data.clear()
                cpu, wall = cpu_and_wall(at.run)
                walls.append(wall)
                cpus.append(cpu)
            print(f"overview rerun (AppTest), {label}, {'caches cleared' if cold else 'warm caches'}: "
                  f"median {statistics.median(walls):.3f} s wall, {statistics.median(cpus):.3f} s CPU; "
                  f"{len(uses) / args.reruns:.1f} store uses per rerun, each median "
                  f"{statistics.median(uses) if uses else 0:.2f} ms")
    store.connect = real_connect


class _Entered:
    """A context manager already entered (the bench times the entering)."""

    def __init__(self, cm, con):
        self.cm, self.con = cm, con

    def __enter__(self):
        return self.con

    def __exit__(self, *exc):
        return self.cm.__exit__(*exc)


if __name__ == "__main__":
    main()
