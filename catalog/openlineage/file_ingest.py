"""One lineage file in: every event judged on its own (landed, or quarantined with its reason
while the others land), the writes in batches of BATCH_EVENTS events, one transaction each.
Nothing an event contains may crash the ingester."""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import duckdb

from catalog import audit
from catalog.ingest_report import Accepted, IngestReport, Rejected, Warning_
from catalog.openlineage import limits
from catalog.openlineage.batch import store_events
from catalog.openlineage.judging import check_event
from catalog.openlineage.per_event import quarantine_one, store_event
from catalog.openlineage.reading import CanonicalText, canonical, iter_events, key_of
from catalog.openlineage.records import Event, EventError

# Events judged, then stored per batch: one transaction and ~15 statements for the batch
# (rows folded in Python, written in multi-row statements), where one transaction of ~12
# statements per event ran at 27 events/s. 5,000 rather than 2,000: the jobs and datasets a
# backfill touches are rewritten once per batch (10k events: 7% less CPU); 10,000 cost
# another 120 MB of memory for 5% more.
BATCH_EVENTS = 5_000


def ingest_text(con: duckdb.DuckDBPyConnection, text: str, *, source: str,
                actor: str | None = None) -> IngestReport:
    """Judge and store every event of one file. Each event has its own outcome (landed, or
    quarantined with its reason while the others land); the writes go in batches of
    BATCH_EVENTS events, one transaction each (see store_events).

    Events are decoded and judged one at a time: memory follows the largest event and the
    batch, not the file (an array is walked element by element, NDJSON line by line)."""
    report = IngestReport()
    if len(text) > limits.MAX_FILE_BYTES:
        report.rejected.append(Rejected(source, limits.file_too_big(len(text.encode("utf-8", "replace")))))
        return report
    file_warnings: list[str] = []
    who = actor or getpass.getuser()
    count = 0
    batch = _Batch(source=source, who=who)
    with _checkpoint_once(con, large=len(text) > BULK_TEXT_CHARS):
        try:
            for index, (event, raw, read_error) in enumerate(iter_events(text, file_warnings)):
                count += 1
                batch.judge(report, event, raw, read_error, index)
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
# every few batches, and each checkpoint rewrites the growing indexes (column edges, event
# keys): 100k events ran at 766 events per CPU second, 10k at 1,112. With the threshold
# raised for the file, the store checkpoints once, at the first commit after it (30k events:
# 914 -> 1,112 per CPU second).
BULK_TEXT_CHARS = 16 * 1024 * 1024
BULK_CHECKPOINT_THRESHOLD = "1GiB"


@contextlib.contextmanager
def _checkpoint_once(con: duckdb.DuckDBPyConnection, *, large: bool) -> Iterator[None]:
    before = None
    if large:
        try:
            before = con.execute("SELECT current_setting('checkpoint_threshold')").fetchone()[0]
            con.execute(f"SET checkpoint_threshold = '{BULK_CHECKPOINT_THRESHOLD}'")
        except duckdb.Error:
            before = None  # a connection that may not change it ingests as before
    try:
        yield
    finally:
        if before is not None:
            # DuckDB's own size text ('16.0 MiB'), read back above: never user input.
            con.execute(f"SET checkpoint_threshold = '{before.replace(chr(39), '')}'")


@dataclass
class _Batch:
    """Judged events waiting to be stored together, and quarantined ones waiting to be kept."""
    source: str
    who: str
    events: list[tuple[int, Event, str]] = field(default_factory=list)       # (index, event, raw_json)
    quarantine: list[tuple[int, str, str]] = field(default_factory=list)     # (index, raw, reason)

    def judge(self, report: IngestReport, event: Any, raw: str, read_error: str | None, index: int) -> None:
        where = f"{self.source}#{index}"
        try:
            if read_error:
                raise EventError(read_error)
            parsed = check_event(event)
            raw_json = raw if type(raw) is CanonicalText else canonical(event)
        except EventError as exc:
            reason = str(exc)
        except Exception as exc:  # noqa: BLE001 - a producer's event must never crash a batch
            reason = f"unreadable event ({type(exc).__name__}: {exc})"
        else:
            self.events.append((index, parsed, raw_json))
            return
        self.quarantine.append((index, raw, reason))
        report.rejected.append(Rejected(where, reason))

    def flush(self, con, report: IngestReport) -> None:
        if not (self.events or self.quarantine):
            return
        try:
            unchanged = audit.retry_write(con, lambda: store_events(
                con, [(e, raw) for _, e, raw in self.events], source=self.source, actor=self.who,
                quarantine=self.quarantine))
        except Exception:  # noqa: BLE001 - rolled back whole: each event is stored on its own below
            unchanged = None
        if unchanged is None:
            for index, raw, reason in self.quarantine:
                quarantine_one(con, raw, reason, self.source, index, self.who)
        for position, (index, parsed, raw_json) in enumerate(self.events):
            where = f"{self.source}#{index}"
            if unchanged is None:
                try:
                    same = store_event(con, parsed, raw_json=raw_json, source=self.source, actor=self.who)
                except Exception as exc:  # noqa: BLE001 - same promise when the store refuses a value
                    reason = f"could not be stored ({type(exc).__name__}: {exc})"
                    quarantine_one(con, raw_json, reason, self.source, index, self.who)
                    report.rejected.append(Rejected(where, reason))
                    continue
            else:
                same = unchanged[position]
            report.accepted.append(Accepted(file=where, id=parsed.run_id or key_of(raw_json)[:16],
                                            version=None, unchanged=same, kind="lineage-event"))
            report.warnings += [Warning_(where, w) for w in parsed.warnings]
        self.events.clear()
        self.quarantine.clear()
