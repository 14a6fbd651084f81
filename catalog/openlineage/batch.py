"""Storing a batch of judged events in one transaction: the rows the batch touches are read
once, folded event by event in memory with the rules of per_event, and written back in one
statement per table. Events arrive flattened (flatten.Flat: judged, keyed, their rows made
and their facets encoded, possibly in another process): the fold only merges."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import duckdb

from catalog.openlineage import limits
from catalog.openlineage.flatten import Flat
from catalog.openlineage.rows import (
    COLUMN_EDGE_CONFLICT,
    description_of,
    facet_pieces,
    fold_run,
    json_or_none,
    merge_facets,
    owners_of,
    piece_is_deletion,
    pieces_json,
    pieces_values,
    text_or_none,
)
from catalog.store import insert_rows, registered, transaction


def store_events(con: duckdb.DuckDBPyConnection, events: list[Flat], *, source: str,
                 actor: str, quarantine: list[tuple[int, str, str]] = (),
                 pieces_memo: dict[str, dict] | None = None) -> list[bool]:
    """Store judged, flattened events in one transaction, in their order, leaving the rows
    that storing each on its own (store_event) would leave; return per event whether it was
    already stored. The batch's quarantined events (index, raw text, reason) are kept in the
    same transaction. Raises, having written nothing, on any write error.

    The rows an event updates (its job, run, datasets, job<->dataset edges) are read once for
    the batch, folded event by event in Python with the same rules as store_event, and
    written back in one statement per table. `pieces_memo` (stored facets JSON -> its facet
    pieces) carries what one batch wrote to the next of the same file.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    keys = [flat.key for flat in events]
    with transaction(con):
        known = {k for (k,) in con.execute(
            "SELECT event_key FROM lineage_events WHERE event_key IN (SELECT unnest(?::TEXT[]))",
            [keys]).fetchall()} if keys else set()
        unchanged, fresh = [], []
        for flat in events:
            key = flat.key
            unchanged.append(key in known)
            if key not in known:
                known.add(key)
                fresh.append(flat)
        if fresh:
            fold = _Fold.load(con, fresh, {} if pieces_memo is None else pieces_memo)
            for flat in fresh:
                fold.apply(flat, source=source, actor=actor, now=now)
            fold.write(con)
        if quarantine:
            _quarantine_many(con, quarantine, source, actor, now)
    return unchanged


def _semi_join(con, table: str, columns: list[str], keys: set[tuple], select: str) -> list[tuple]:
    """Rows of `table` whose `columns` equal one of `keys` (one join, not a scan per key)."""
    if not keys:
        return []

    with registered(con, [list(k) for k in keys]) as name:
        on = " AND ".join(f"t.{c} = k.c{i}" for i, c in enumerate(columns))
        return con.execute(f"SELECT {select} FROM {table} t SEMI JOIN {name} k ON {on}").fetchall()  # noqa: S608


class _Stored:
    """A job's or dataset's row while a batch is folded. Its facets are pieces
    (rows.facet_pieces); they stay the JSON text read from the store until an event brings
    facets to merge: most events name datasets without facets (inputs), and parsing then
    re-serialising unchanged facets was a third of a backfill's fold."""
    __slots__ = ("pieces", "text", "last", "columns")

    def __init__(self, pieces: dict | None, text: str | None, last: datetime | None, columns: tuple = ()):
        self.pieces, self.text, self.last, self.columns = pieces, text, last, columns

    def merge(self, new: dict, event_time: datetime, memo: dict[str, dict]) -> None:
        if new or self.text is None:
            if self.pieces is not None:
                old = self.pieces
            elif self.text:
                old = memo.get(self.text)
                if old is None:
                    old = facet_pieces(json.loads(self.text))
            else:
                old = {}
            self.pieces = merge_facets(old, self.last, new, event_time, deleted=piece_is_deletion)
            self.text = None  # written from self.pieces
        self.last = max(event_time, self.last) if self.last else event_time


class _Fold:
    """The lineage rows a batch of events touches, updated in memory event by event with the
    rules of per_event (_upsert_job, _upsert_run, _upsert_datasets, _record_io,
    _record_column_lineage)."""

    def __init__(self, pieces_memo: dict[str, dict]):
        # Stored facets JSON -> its pieces, filled as rows are written: a backfill rewrites
        # the same datasets' facets batch after batch, and splitting the text read back into
        # pieces again (decode, then encode each facet) was ~8% of the writer's time.
        self.pieces_memo = pieces_memo
        self.jobs: dict[tuple, _Stored] = {}
        self.runs: dict[str, dict] = {}
        self.datasets: dict[tuple, _Stored] = {}
        self.io: dict[tuple, list] = {}
        self.dirty_jobs: set[tuple] = set()
        self.dirty_runs: set[str] = set()
        self.dirty_datasets: set[tuple] = set()
        self.placeholders: dict[tuple, list] = {}
        self.fields: dict[tuple, list[list]] = {}
        self.dirty_io: set[tuple] = set()
        self.edges: dict[bytes, list] = {}  # edge_key (rows.column_edge_key) -> row
        self.event_rows: list[list] = []
        self.quality_rows: list[list] = []

    @classmethod
    def load(cls, con, events: list[Flat], pieces_memo: dict[str, dict]) -> _Fold:
        fold = cls(pieces_memo)
        job_keys = {(e.job_namespace, e.job_name) for e in events if e.job_name is not None}
        for ns, name, facets, last, *columns in _semi_join(
                con, "lineage_jobs", ["namespace", "name"], job_keys,
                "namespace, name, facets, last_event_time, description, job_type, sql_text, owners"):
            fold.jobs[(ns, name)] = _Stored(None if facets else {}, facets or None, last, tuple(columns))
        run_ids = sorted({e.run_id for e in events if e.run_id is not None})
        if run_ids:
            for row in con.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM lineage_runs "  # noqa: S608 - constants
                                   "WHERE run_id IN (SELECT unnest(?::TEXT[]))", [run_ids]).fetchall():
                fold.runs[row[0]] = dict(zip(_RUN_COLUMNS, row, strict=True))
        dataset_keys = {(ds[0], ds[1]) for e in events for ds in e.datasets}
        for ns, name, facets, last, *columns in _semi_join(
                con, "lineage_datasets", ["namespace", "name"], dataset_keys,
                "namespace, name, facets, last_event_time, dataset_type, description, owners"):
            fold.datasets[(ns, name)] = _Stored(None if facets else {}, facets or None, last, tuple(columns))
        io_keys = {(e.job_namespace, e.job_name, *io) for e in events for io in e.io}
        for *key, first, last, run in _semi_join(
                con, "lineage_io", ["job_namespace", "job_name", "dataset_namespace", "dataset_name", "direction"],
                io_keys, "job_namespace, job_name, dataset_namespace, dataset_name, direction, first_seen, "
                         "last_seen, last_run_id"):
            fold.io[tuple(key)] = [first, last, run]
        return fold

    def apply(self, event: Flat, *, source: str, actor: str, now: datetime) -> None:
        t = event.event_time
        self.event_rows.append([event.key, event.kind, event.event_type, t, event.run_id,
                                event.job_namespace, event.job_name, event.producer, event.schema_url,
                                event.raw_json, source, now, actor])
        if event.job_name is not None:
            self._job(event)
        if event.run_id is not None:
            self._run(event)
        self._datasets(event.datasets, t)
        if event.io:
            self._io(event)
        edges, known, placeholders = self.edges, self.datasets, self.placeholders
        for row in event.edges:
            source_key = (row[3], row[4])
            if source_key not in known:  # as INSERT ... ON CONFLICT DO NOTHING
                known[source_key] = _Stored(None, None, t)
                placeholders[source_key] = [*source_key, None, None, None, None, t]
            edge = row[12]  # edge_key (rows.column_edge_key)
            earlier = edges.get(edge)
            if earlier is not None and earlier[11] > row[11]:
                row = [*row[:11], earlier[11], edge]
            edges[edge] = row
        if event.quality:
            self.quality_rows += event.quality

    def _job(self, event: Flat) -> None:
        job = (event.job_namespace, event.job_name)
        stored = self.jobs.get(job)
        if stored is None:
            stored = self.jobs[job] = _Stored(None, None, None)
        stored.merge(event.job_facets, event.event_time, self.pieces_memo)
        self.dirty_jobs.add(job)

    def _run(self, event: Flat) -> None:
        row = self.runs.get(event.run_id)
        state, started, ended, last = fold_run(
            (row["state"], row["started_at"], row["ended_at"], row["last_event_time"]) if row else None, event)
        self.runs[event.run_id] = {
            "run_id": event.run_id, "job_namespace": event.job_namespace, "job_name": event.job_name,
            "state": state, "started_at": started, "ended_at": ended,
            **{k: v if v is not None or not row else row[k] for k, v in zip(_RUN_FACET_COLUMNS, event.run_fields,
                                                                             strict=True)},
            "last_event_time": last}
        self.dirty_runs.add(event.run_id)

    def _datasets(self, datasets: list[tuple], event_time: datetime) -> None:
        for namespace, name, new, fields in datasets:
            key = (namespace, name)
            stored = self.datasets.get(key)
            if stored is None:
                stored = self.datasets[key] = _Stored(None, None, None)
            last = stored.last
            stored.merge(new, event_time, self.pieces_memo)
            self.dirty_datasets.add(key)  # its row is made once, from the final state (write)
            if fields is not None and (last is None or event_time >= last):
                self.fields[key] = [[namespace, name, *f] for f in fields]

    def _io(self, event: Flat) -> None:
        t = event.event_time
        for namespace, name, direction in event.io:
            key = (event.job_namespace, event.job_name, namespace, name, direction)
            known = self.io.get(key)
            if known is None:
                self.io[key] = [t, t, event.run_id]
            else:
                first, last, run = known
                run = (event.run_id if event.run_id is not None else run) if t >= last else run
                self.io[key] = [min(first, t), max(last, t), run]
            self.dirty_io.add(key)

    def write(self, con) -> None:
        insert_rows(con, "lineage_events", self.event_rows)
        if len(self.pieces_memo) > PIECES_MEMO_SIZE:
            self.pieces_memo.clear()
        memo = self.pieces_memo
        insert_rows(con, "lineage_jobs", [[*job, *_job_columns(self.jobs[job], memo)] for job in sorted(self.dirty_jobs)],
                    tail=_replace_all("namespace, name", ["description", "job_type", "sql_text", "owners",
                                                          "facets", "last_event_time"]))
        insert_rows(con, "lineage_runs", [[self.runs[r][c] for c in _RUN_COLUMNS] for r in sorted(self.dirty_runs)],
                    tail=_replace_all("run_id", _RUN_COLUMNS[1:]))
        insert_rows(con, "lineage_datasets", [[*key, *_dataset_columns(self.datasets[key], memo)]
                                              for key in sorted(self.dirty_datasets)], tail=_replace_all(
            "namespace, name", ["dataset_type", "description", "owners", "facets", "last_event_time"]))
        insert_rows(con, "lineage_datasets", [row for key, row in self.placeholders.items()
                                              if key not in self.dirty_datasets], tail="ON CONFLICT DO NOTHING")
        if self.fields:
            with registered(con, [list(k) for k in self.fields]) as name:
                con.execute(f"DELETE FROM lineage_dataset_fields f WHERE EXISTS (SELECT 1 FROM {name} k "  # noqa: S608
                            "WHERE k.c0 = f.namespace AND k.c1 = f.name)")
            insert_rows(con, "lineage_dataset_fields", [row for rows in self.fields.values() for row in rows])
        insert_rows(con, "lineage_io", [[*key, *self.io[key]] for key in sorted(self.dirty_io)], tail=_replace_all(
            "job_namespace, job_name, dataset_namespace, dataset_name, direction",
            ["first_seen", "last_seen", "last_run_id"]))
        insert_rows(con, "lineage_column_edges", list(self.edges.values()), tail=COLUMN_EDGE_CONFLICT)
        insert_rows(con, "lineage_dataset_quality", self.quality_rows)


def _job_columns(stored: _Stored, memo: dict[str, dict]) -> list:
    """description, job_type, sql_text, owners, facets, last_event_time (as per_event._upsert_job)."""
    if stored.text is not None:  # facets unchanged: so are the columns made from them
        return [*stored.columns, stored.text, stored.last]
    facets = pieces_values(stored.pieces)
    job_type = facets.get("jobType") or {}
    return [description_of(facets), job_type.get("jobType") or job_type.get("processingType"), _sql_text(facets),
            json_or_none(owners_of(facets)), _facets_text(stored.pieces, memo), stored.last]


def _facets_text(pieces: dict[str, tuple], memo: dict[str, dict]) -> str:
    text = pieces_json(pieces)
    memo[text] = pieces  # pieces are never changed in place (merge_facets makes a new dict)
    return text


def _dataset_columns(stored: _Stored, memo: dict[str, dict]) -> list:
    """dataset_type, description, owners, facets, last_event_time (as per_event._upsert_datasets)."""
    if stored.text is not None:
        return [*stored.columns, stored.text, stored.last]
    facets = pieces_values(stored.pieces)
    return [text_or_none((facets.get("datasetType") or {}).get("datasetType")), description_of(facets),
            json_or_none(owners_of(facets)), _facets_text(stored.pieces, memo), stored.last]


PIECES_MEMO_SIZE = 10_000  # facets texts remembered across the batches of one file (~30 MB at most)

_RUN_COLUMNS = ("run_id", "job_namespace", "job_name", "state", "started_at", "ended_at", "nominal_start",
                "nominal_end", "parent_run_id", "error_message", "last_event_time")
_RUN_FACET_COLUMNS = ("nominal_start", "nominal_end", "parent_run_id", "error_message")  # rows.run_facet_fields


def _replace_all(conflict: str, columns) -> str:
    return f"ON CONFLICT ({conflict}) DO UPDATE SET " + ", ".join(f"{c} = excluded.{c}" for c in columns)


def _sql_text(facets: dict) -> str | None:
    sql = (facets.get("sql") or {}).get("query")
    return sql if isinstance(sql, str) else None


def _quarantine_many(con, items: list[tuple[int, str, str]], source: str, actor: str, now: datetime) -> None:

    rows = {}
    for position, raw, reason in items:
        raw = limits.quarantine_text(raw)
        digest = hashlib.sha256(raw.encode("utf-8", "replace")).hexdigest()
        rows.setdefault((digest, reason), [digest, reason, source, position,
                                           raw.encode("utf-8", "replace").decode(), now, actor])
    insert_rows(con, "lineage_quarantine", list(rows.values()), tail="ON CONFLICT DO NOTHING")
