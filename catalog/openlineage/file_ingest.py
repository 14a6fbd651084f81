"""One lineage file in: every event judged on its own (landed, or quarantined with its reason
while the others land), the writes in batches of BATCH_EVENTS events, one transaction each.
Nothing an event contains may crash the ingester."""

from __future__ import annotations

import contextlib
import getpass
import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import duckdb

from catalog import audit, store
from catalog.ingest_report import Accepted, IngestReport, Rejected, Warning_
from catalog.openlineage import limits, pool
from catalog.openlineage.batch import store_events
from catalog.openlineage.flatten import Bad, Flat, flatten
from catalog.openlineage.judging import check_event
from catalog.openlineage.per_event import quarantine_one, store_event
from catalog.openlineage.reading import iter_events
from catalog.openlineage.records import EventError

# Events judged, then stored per batch: one transaction and ~15 statements for the batch
# (rows folded in Python, written in multi-row statements), where one transaction of ~12
# statements per event ran at 27 events/s. 5,000 rather than 2,000: the jobs and datasets a
# backfill touches are rewritten once per batch (10k events: 7% less CPU); 10,000 cost
# another 120 MB of memory for 5% more.
BATCH_EVENTS = 5_000


def ingest_text(con: duckdb.DuckDBPyConnection, text: str, *, source: str,
                actor: str | None = None, workers: int | None = None) -> IngestReport:
    """Judge and store every event of one file. Each event has its own outcome (landed, or
    quarantined with its reason while the others land); the writes go in batches of
    BATCH_EVENTS events, one transaction each (see store_events).

    Events are decoded and judged one at a time: memory follows the largest event and the
    batch, not the file (an array is walked element by element, NDJSON line by line). A
    large NDJSON file is judged in `workers` processes (default: one per core, see
    openlineage.pool) while this one stores, with the same outcome per event."""
    report = IngestReport()
    if len(text) > limits.MAX_FILE_BYTES:
        report.rejected.append(Rejected(source, limits.file_too_big(len(text.encode("utf-8", "replace")))))
        return report
    file_warnings: list[str] = []
    who = actor or getpass.getuser()
    count = 0
    batch = _Batch(source=source, who=who)
    outcomes = _outcomes(text, file_warnings, workers)
    with (store.checkpoint_once(con, large=len(text) > BULK_TEXT_CHARS), pool.without_cyclic_gc(),
          contextlib.closing(outcomes)):  # closing: a pool of workers ends with the file, whatever happens
        try:
            for outcome in outcomes:
                count += 1
                batch.take(report, outcome)
                if len(batch.events) + len(batch.quarantine) >= BATCH_EVENTS:
                    batch.flush(con, report)
        except EventError as exc:
            batch.flush(con, report)
            report.rejected.append(Rejected(source, str(exc)))
            return report
        batch.flush(con, report)
    report.warnings += [Warning_(source, w) for w in file_warnings]
    if not count:
        report.warnings.append(Warning_(source, "no OpenLineage events in this file"))
    return report


# A file larger than DuckDB's default checkpoint threshold (16 MiB of WAL) would checkpoint
# every few batches, rewriting the growing indexes (column edges, event keys) each time:
# 100k events ran at 766 events per CPU second, 10k at 1,112; with store.checkpoint_once,
# 30k events went 914 -> 1,112 per CPU second.
BULK_TEXT_CHARS = 16 * 1024 * 1024


def _outcomes(text: str, warnings: list[str], workers: int | None) -> Iterator[Flat | Bad]:
    """Every event of the file judged and flattened, in file order."""
    if pool.pooled(text, workers):
        yield from pool.flattened_in_workers(text, warnings, workers)
        return
    for index, (event, raw, read_error) in enumerate(iter_events(text, warnings)):
        yield flatten(event, raw, read_error, index)


@dataclass
class _Batch:
    """Judged events waiting to be stored together, and quarantined ones waiting to be kept."""
    source: str
    who: str
    events: list[Flat] = field(default_factory=list)
    quarantine: list[tuple[int, str, str]] = field(default_factory=list)     # (index, raw, reason)
    pieces_memo: dict[str, dict] = field(default_factory=dict)                # see batch.store_events

    def take(self, report: IngestReport, outcome: Flat | Bad) -> None:
        if type(outcome) is Flat:
            self.events.append(outcome)
            return
        self.quarantine.append(outcome)
        report.rejected.append(Rejected(f"{self.source}#{outcome.index}", outcome.reason))

    def flush(self, con, report: IngestReport) -> None:
        if not (self.events or self.quarantine):
            return
        try:
            unchanged = audit.retry_write(con, lambda: store_events(
                con, self.events, source=self.source, actor=self.who, quarantine=self.quarantine,
                pieces_memo=self.pieces_memo))
        except Exception:  # noqa: BLE001 - rolled back whole: each event is stored on its own below
            unchanged = None
        if unchanged is None:
            for index, raw, reason in self.quarantine:
                quarantine_one(con, raw, reason, self.source, index, self.who)
        source = self.source
        accepted, warnings = report.accepted, report.warnings
        for position, flat in enumerate(self.events):
            where = f"{source}#{flat.index}"
            if unchanged is None:
                try:
                    same = store_event(con, check_event(json.loads(flat.raw_json)), raw_json=flat.raw_json,
                                       source=source, actor=self.who)
                except Exception as exc:  # noqa: BLE001 - same promise when the store refuses a value
                    reason = f"could not be stored ({type(exc).__name__}: {exc})"
                    quarantine_one(con, flat.raw_json, reason, source, flat.index, self.who)
                    report.rejected.append(Rejected(where, reason))
                    continue
            else:
                same = unchanged[position]
            accepted.append(Accepted(file=where, id=flat.run_id or flat.key[:16],
                                     version=None, unchanged=same, kind="lineage-event"))
            if flat.warnings:
                warnings += [Warning_(where, w) for w in flat.warnings]
        self.events.clear()
        self.quarantine.clear()
