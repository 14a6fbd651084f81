"""Reuse of a stored measurement when neither the data nor the contract changed.

A data-only check (schema, not-null, uniqueness, values, ranges, row counts, the PII sample
scan) gives the same answer on the same bytes under the same contract text. Each such result
records the data file's fingerprint and the contract's content hash in its diagnostics; the
next run reuses the newest stored result of the same check when both match and the check
compiles to the same SQL, and says so: `diagnostics.reused_from` names the run that measured
it, and the reason ends with that run's id. Freshness is never reused (it depends on the
clock), nor is anything on a remote engine (no fingerprint).

The fingerprint is the file's size and modification time plus a hash of its Parquet footer
(row-group sizes, offsets and statistics) or, for other formats, of its first and last
64 KiB: a rewrite that keeps the size within the file system's time resolution still changes
the hash in practice. `ENGINE_VERSION` is part of it, so a meshgov release that changes what a
check means does not reuse older answers.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any

import duckdb

from catalog import check_totals
from catalog.locations import Location
from checks.result import CheckResult

ENGINE_VERSION = "1"
EDGE_BYTES = 64 * 1024
MAX_FOOTER_BYTES = 16 * 1024 * 1024
NOT_REUSED_METRICS = frozenset({"latency", "frequency"})  # depend on the clock


def data_fingerprint(location: Location | None) -> str | None:
    """What identifies the bytes a local dataset's checks read; None when it cannot be told."""
    if location is None or location.refused or location.engine != "duckdb":
        return None
    paths = [location.path]
    if location.kind == "duckdb":
        paths.append(location.path + ".wal")  # committed but not yet checkpointed rows
    digest = hashlib.sha256(f"{ENGINE_VERSION}|{location.kind}|{location.table or ''}".encode())
    try:
        for index, path in enumerate(paths):
            if index and not os.path.exists(path):
                continue
            stat = os.stat(path)
            digest.update(f"|{os.path.realpath(path)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
            with open(path, "rb") as handle:
                digest.update(_content_sample(handle, stat.st_size, parquet=location.kind == "parquet"))
    except OSError:
        return None
    return digest.hexdigest()[:32]


def _content_sample(handle, size: int, *, parquet: bool) -> bytes:
    if parquet and size >= 12:
        handle.seek(size - 8)
        tail = handle.read(8)
        footer = int.from_bytes(tail[:4], "little")
        if tail[4:] == b"PAR1" and 0 < footer <= min(size - 12, MAX_FOOTER_BYTES):
            handle.seek(size - 8 - footer)
            return handle.read(footer) + tail
    head = handle.read(EDGE_BYTES)
    if size > EDGE_BYTES:
        handle.seek(max(EDGE_BYTES, size - EDGE_BYTES))
        head += handle.read(EDGE_BYTES)
    return head


@dataclass
class Stored:
    """The newest stored result of one check that recorded a fingerprint."""
    run_id: str
    status: str
    measured: Any
    threshold: Any
    reason: str
    diagnostics: dict[str, Any]
    sql: str | None
    kind: str
    dataset: str | None


@dataclass
class PriorResults:
    """The newest stored, reusable results of the products of a run, by check id."""
    by_check: dict[str, Stored] = field(default_factory=dict)

    def find(self, check_id: str, *, fingerprint: str | None, contract_hash: str | None,
             query: str | None) -> Stored | None:
        """The stored result of this check when it measured the same bytes, under the same
        contract text, with the same compiled query; else None."""
        stored = self.by_check.get(check_id)
        if stored is None or fingerprint is None or contract_hash is None:
            return None
        if stored.diagnostics.get("data_fingerprint") != fingerprint or \
                stored.diagnostics.get("contract_hash") != contract_hash or \
                stored.diagnostics.get("check_query") != query:
            return None
        return stored

    def pii_of(self, product_id: str, dataset: str, *, fingerprint: str | None,
               contract_hash: str | None) -> list[tuple[str, Stored]] | None:
        """The stored PII scan of a dataset, whole, when all of it matches; else None."""
        found = [(check_id, s) for check_id, s in self.by_check.items()
                 if s.kind == "pii" and s.dataset == dataset and check_id.startswith(f"pii:{product_id}/")]
        if not found or fingerprint is None or contract_hash is None:
            return None
        if any(s.diagnostics.get("data_fingerprint") != fingerprint or
               s.diagnostics.get("contract_hash") != contract_hash for _, s in found):
            return None
        return found


def load_prior(con: duckdb.DuckDBPyConnection, product_ids: list[str]) -> PriorResults:
    """Results of the newest complete run of each product that carry a fingerprint (queried
    while the store is open; matching happens later, against the files as they are then)."""
    if not product_ids:
        return PriorResults()
    rows = con.execute(f"""
        SELECT check_id, run_id, status, measured, threshold, reason, diagnostics, sql, kind, dataset
        FROM ({check_totals.latest_results_sql(con)})  -- the newest runs from their totals
        WHERE list_contains(?, product_id) AND kind <> 'freshness'
          AND json_extract_string(diagnostics, '$.data_fingerprint') IS NOT NULL""",  # noqa: S608
        [product_ids]).fetchall()
    prior = PriorResults()
    for check_id, run_id, status, measured, threshold, reason, diagnostics, sql, kind, dataset in rows:
        try:
            parsed = json.loads(diagnostics) if diagnostics else {}
        except (TypeError, ValueError):
            continue
        prior.by_check[check_id] = Stored(run_id, status, _measured(measured), _measured(threshold), reason or "",
                                          parsed, sql, kind, dataset)
    return prior


def _measured(text: Any) -> Any:
    """A stored measured value or threshold back as it was: numbers are stored as JSON text,
    type names and other strings as they are."""
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def reused_result(stored: Stored, fresh: CheckResult) -> CheckResult:
    """`fresh` (the result skeleton of this run: ids, targets, times) carrying the stored
    measurement, marked with the run that measured it."""
    origin = stored.diagnostics.get("reused_from", {}).get("run_id") or stored.run_id
    reason = stored.reason.removesuffix(_suffix(origin))
    fresh.status = stored.status  # type: ignore[assignment]
    fresh.measured = stored.measured
    fresh.threshold = stored.threshold
    fresh.sql = stored.sql
    fresh.reason = reason + _suffix(origin)
    fresh.diagnostics = {**stored.diagnostics, "reused_from": {"run_id": origin}}
    return fresh


def _suffix(run_id: str) -> str:
    return f" (reused from run {run_id}: data and contract unchanged)"


def was_reused(result: CheckResult) -> bool:
    return bool((result.diagnostics or {}).get("reused_from"))


def mark(result: CheckResult, *, fingerprint: str | None, contract_hash: str | None,
         query: str | None = None) -> CheckResult:
    """Record what a fresh, data-only measurement was taken on (and, for data checks, the
    compiled query that measured it), so a later run may reuse it. Errors are not recorded:
    a timeout or a locked file says nothing lasting about the data."""
    if fingerprint and contract_hash and result.status != "error":
        result.diagnostics["data_fingerprint"] = fingerprint
        result.diagnostics["contract_hash"] = contract_hash
        if query is not None:
            result.diagnostics["check_query"] = query
    return result
