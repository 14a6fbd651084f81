"""A bulk ingest's contract files read, loaded, validated and parsed in worker processes.

Loading YAML, validating it, parsing it into the model and its rows per table is ~85% of a
contract's ingest CPU and needs no store, so for a large folder (`ingest_paths(bulk=True)`,
as `seed --products N` does) worker processes do it while the parent only writes and
indexes, in the files' order (when the parent also parsed, it was the slower side: 2.6 ms
a contract in the parent against 1.9 ms in each of two workers). The outcome per file is
the one the parent would reach alone: the workers run `ingest.prepare_contract_file`, the
same steps and messages (ingest passes it in: this module does not import ingest). Workers are spawned (not forked: the parent holds DuckDB and
other threads), so they start with fresh imports (~2 s CPU each); below POOL_MIN_FILES
files that costs more than it saves and the parent works alone.

Only `.yaml`/`.yml` files go to the workers: a `.json` file may be lineage, which the parent
ingests itself. Should the pool break (a worker killed), the parent checks the rest itself.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import sys
import types
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from itertools import islice
from pathlib import Path

from catalog.contract_rows import PreparedContract
from catalog.ingest_report import IngestReport

POOL_MIN_FILES = 1_000
CHUNK_FILES = 50       # files per task: amortises the round trip, keeps the order cheap
# Bounds what waits in the parent's memory (~1,200 prepared contracts, ~25 MB). More than a
# write batch (ingest.BATCH_FILES): while the parent writes one, the workers prepare the next
# instead of waiting (with 8 chunks they stood idle through each batch's write).
CHUNKS_IN_FLIGHT = 24
ENV_WORKERS = "MESHGOV_INGEST_WORKERS"  # 0 or 1: the parent works alone

Outcome = IngestReport | PreparedContract


def worker_count() -> int:
    """Workers for a bulk ingest: MESHGOV_INGEST_WORKERS, else one per usable core."""
    raw = os.environ.get(ENV_WORKERS, "").strip()
    if raw.isdigit():
        return int(raw)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _check_chunk(check: Callable[[Path], Outcome], paths: list[str]) -> list[Outcome]:
    return [check(Path(p)) for p in paths]


# Why the last pooled batch fell back to the parent (for tests and debugging; the outcome of
# every file is the same either way).
last_fallback: str | None = None


def _pooled(paths: list[Path]) -> bool:
    return len(paths) >= POOL_MIN_FILES


@contextlib.contextmanager
def checked_in_workers(files: list[Path], *, check: Callable[[Path], Outcome], suffixes: set[str],
                       workers: int | None = None) -> Iterator[Callable[[Path], Outcome | None]]:
    """Yields `take(path)`: `check(path)` as a worker ran it, for each file with one of
    `suffixes`, asked in the files' order; None for a file the parent must prepare itself
    (another suffix, or no pool for this batch). `check` is sent by reference: a module-level
    function (ingest.prepare_contract_file)."""
    pooled = [f for f in files if f.suffix.lower() in suffixes]
    workers = worker_count() if workers is None else workers
    if workers < 2 or not _pooled(pooled):
        yield lambda path: None
        return
    wanted = set(pooled)
    with _bare_main(), ProcessPoolExecutor(max_workers=workers,
                                           mp_context=multiprocessing.get_context("spawn")) as pool:
        outcomes = _in_order(pool, check, [str(p) for p in pooled])

        def take(path: Path) -> Outcome | None:
            return next(outcomes) if path in wanted else None

        try:
            yield take
        finally:
            outcomes.close()  # cancels what is still queued


@contextlib.contextmanager
def _bare_main() -> Iterator[None]:
    """A spawned worker first re-runs the parent's `__main__` file. Streamlit (the app, AppTest)
    puts the page script it runs there, and a worker that runs a page dies: the pool broke
    and the parent checked every file alone. The check function is imported by its module
    name, so the workers get an empty `__main__` while the pool lives (workers start on
    demand, on the first submits)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _in_order(pool: ProcessPoolExecutor, check: Callable[[Path], Outcome], paths: list[str]) -> Iterator[Outcome]:
    chunks = iter([paths[i:i + CHUNK_FILES] for i in range(0, len(paths), CHUNK_FILES)])
    pending: deque[tuple[list[str], Future]] = deque()
    broken = False

    global last_fallback

    def submit(chunk: list[str]) -> None:
        pending.append((chunk, pool.submit(_check_chunk, check, chunk)))

    for chunk in islice(chunks, CHUNKS_IN_FLIGHT):
        submit(chunk)
    try:
        while pending:
            chunk, future = pending.popleft()
            try:
                results = future.result() if not broken else _check_chunk(check, chunk)
            except Exception as exc:  # noqa: BLE001 - a broken pool (worker killed): the parent goes on alone
                last_fallback = f"{type(exc).__name__}: {exc}"
                broken = True
                results = _check_chunk(check, chunk)
            if not broken:
                following = next(chunks, None)
                if following is not None:
                    try:
                        submit(following)
                    except Exception as exc:  # noqa: BLE001 - a worker died after its last answer
                        last_fallback = f"{type(exc).__name__}: {exc}"
                        broken = True
                        pending.append((following, None))  # type: ignore[arg-type]
            if broken:
                pending.extend((rest, None) for rest in chunks)  # type: ignore[arg-type]
            yield from results
    finally:
        for _, future in pending:
            if future is not None:
                future.cancel()
