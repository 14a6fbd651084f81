"""A large NDJSON lineage file judged and flattened in worker processes.

Decoding, judging, the canonical form that keys an event and the rows it makes need no
store, and were ~60% of a backfill's CPU in the one process that also stores. For a large
NDJSON file, worker processes do them on parts of whole lines while the parent folds and
writes, in file order; each event's outcome is the one the parent reaches alone (the same
function, flatten.flatten, runs in both). Workers are spawned with a bare `__main__`, as the
contract ingest's (catalog.ingest_pool); should the pool break, the parent reads the rest
itself. MESHGOV_INGEST_WORKERS sets the number of workers for both (0 or 1: none); unset,
one per core.
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor

from catalog.openlineage import limits
from catalog.openlineage.flatten import Bad, Flat, flatten
from catalog.openlineage.reading import constants_warning, is_ndjson, ndjson_part

# Below this a file is read by the parent alone: spawning a worker costs ~1 s of CPU
# (imports and facet schemas), what the parent spends on ~1,000 events.
POOL_MIN_CHARS = 8 * 1024 * 1024
PART_CHARS = 512 * 1024     # lines per task: ~280 generated events, a few ms of round trip
PARTS_IN_FLIGHT = 16        # per worker: ~9,000 events, more than a batch (file_ingest.BATCH_EVENTS), so the
                            # workers go on while the parent writes one; bounds what waits in memory

# Why the last pooled file fell back to the parent (for tests and debugging).
last_fallback: str | None = None


def pooled(text: str, workers: int | None) -> bool:
    """Whether `text` is judged by workers: a large NDJSON file, with `workers` >= 2 (None:
    MESHGOV_INGEST_WORKERS, else one per core).

    Not gated by the load average (as it was until measured): at 100k events on the shared
    2-core machine, load average 4-11, two workers were 1.74x, 0.78x, 1.09x and 0.94x the
    parent alone's wall in four pairs (the gate would have chosen the parent alone in all),
    for ~15-20% more CPU; the parent, which writes every event, spends ~35 s of CPU with
    them against ~60 s alone (bench/README.md, bench_ingest.py)."""
    if len(text) < POOL_MIN_CHARS:
        return False
    # Imported here, on the parent's side only: the workers import little.
    from catalog.ingest_pool import worker_count

    return (worker_count() if workers is None else workers) >= 2 and is_ndjson(text)


def flatten_part(part: str, first_line: int, limit_values: dict[str, int]) -> tuple[list[Flat | Bad], list[str]]:
    """What a worker does with a part of the file: every event's outcome (indexes counted
    from the part's first event), and the non-standard JSON constants it met."""
    for name, value in limit_values.items():  # the parent's limits (a test may have set them)
        setattr(limits, name, value)
    seen: list[str] = []
    with without_cyclic_gc():
        outcomes = [flatten(event, raw, read_error, index)
                    for index, (event, raw, read_error) in enumerate(ndjson_part(part, seen, first_line=first_line))]
    return outcomes, seen


@contextlib.contextmanager
def without_cyclic_gc() -> Iterator[None]:
    """Python's cycle collector off while events are decoded, flattened, sent and folded:
    these make millions of small containers and no cycles, and the collector's passes over
    them were a third of the time (a part of 2,000 events flattened in 368 us an event with
    it, 241 without; its outcomes unpickled in 51 us an event with it, 11 without)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _parts(text: str) -> Iterator[tuple[str, int]]:
    """(whole lines of about PART_CHARS, number of the first line)."""
    start, line = 0, 1
    while start < len(text):
        end = text.find("\n", min(start + PART_CHARS, len(text)))
        end = len(text) if end < 0 else end + 1
        yield text[start:end], line
        line += text.count("\n", start, end)
        start = end


def flattened_in_workers(text: str, warnings: list[str], workers: int | None) -> Iterator[Flat | Bad]:
    """Every event's outcome (flatten.flatten), in file order, judged by `workers` processes.
    The file's warnings are appended to `warnings` once the iterator is exhausted."""
    from catalog.ingest_pool import _bare_main, worker_count

    global last_fallback
    workers = worker_count() if workers is None else workers
    limit_values = {name: getattr(limits, name) for name in dir(limits) if name.startswith("MAX_")}
    seen: list[str] = []
    base = 0
    parts = _parts(text)
    pending: deque[tuple[str, int, Future | None]] = deque()
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        broken = False

        def submit() -> None:
            nonlocal broken
            part = next(parts, None)
            if part is None:
                return
            future = None
            if not broken:
                try:
                    future = pool.submit(flatten_part, *part, limit_values)
                except Exception as exc:  # noqa: BLE001 - the pool broke since the last result
                    global last_fallback
                    last_fallback, broken = f"{type(exc).__name__}: {exc}", True
            pending.append((*part, future))

        with _bare_main():  # the workers are spawned by the first submits, and only then
            for _ in range(workers * PARTS_IN_FLIGHT):
                submit()
        try:
            while pending:
                part, first_line, future = pending.popleft()
                try:
                    if future is None:
                        raise _Alone
                    outcomes, constants = future.result()
                except Exception as exc:  # noqa: BLE001 - a broken pool (worker killed): the parent goes on alone
                    if not isinstance(exc, _Alone):
                        last_fallback, broken = f"{type(exc).__name__}: {exc}", True
                    outcomes, constants = flatten_part(part, first_line, limit_values)
                submit()
                seen += constants
                for outcome in outcomes:
                    yield outcome._replace(index=base + outcome.index)
                base += len(outcomes)
        finally:
            for *_, future in pending:
                if future is not None:
                    future.cancel()
    if seen:
        warnings.append(constants_warning(seen))


class _Alone(Exception):
    """A part the parent reads itself, the pool being broken."""
