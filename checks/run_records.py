"""A check run as the store keeps it: the run's row and state (`running`, then `complete` or
`incomplete`), its results written in one transaction with the audit row, runs left `running`
by a process that died marked `incomplete`, and stored reasons kept to a readable size."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import uuid
from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from catalog import access, audit, check_totals
from catalog.store import retrying, transaction
from checks import compiler
from checks.result import SEVERITY, CheckResult

if TYPE_CHECKING:
    import pandas as pd

# The stored reason of one result: a reason is for people, and a rule or policy must not
# fill the store (a 20 MB policy reason was once stored in full).
MAX_STORED_REASON = 4000
# How the results reach DuckDB: up to this many as list parameters (~30 us a result: 370k took
# 11 s of CPU), more as a pandas DataFrame (1.4 s for 370k, but importing pandas costs a
# process ~0.6 s of CPU, which a run over one product, ~30 results, should not pay).
LISTS_UP_TO = 5000
_LIST_TYPES = {"started_at": "TIMESTAMP", "finished_at": "TIMESTAMP"}
_RESULT_COLUMNS = ("run_id", "check_id", "kind", "product_id", "dataset", "column_name", "target",
                   "status", "measured", "threshold", "reason", "diagnostics", "sql", "contract_id",
                   "contract_version", "started_at", "finished_at", "triggered_by")


@dataclass
class Run:
    run_id: str
    status: str
    results: list[CheckResult]
    state: str
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None
    triggered_by: str | None = None
    scope: list[str] | None = None

    def counts(self) -> dict[str, int]:
        found = dict.fromkeys(SEVERITY, 0)
        for result in self.results:
            found[result.status] = found.get(result.status, 0) + 1
        return found


def process_alive(pid: int | None, *, since: dt.datetime | None = None) -> bool:
    """Whether `pid` is still the process that started a run at `since` (UTC, naive)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return True  # no /proc: trust the signal probe
    if fields[0] in ("Z", "X"):  # exited, not yet reaped
        return False
    if since is not None:
        try:
            ticks = os.sysconf("SC_CLK_TCK")
            boot = next(int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                        if line.startswith("btime"))
            started = dt.datetime.fromtimestamp(boot + int(fields[19]) / ticks, dt.UTC).replace(tzinfo=None)
            if started > since + dt.timedelta(seconds=2):  # the pid was reused by a newer process
                return False
        except (OSError, ValueError, StopIteration, IndexError):
            return True
    return True


def mark_dead_runs_incomplete(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Runs left `running` by a process of this host that is gone -> `incomplete`."""
    host = socket.gethostname()
    rows = con.execute("SELECT run_id, pid, started_at FROM check_runs WHERE state = 'running' AND host = ?",
                       [host]).fetchall()
    dead = [run_id for run_id, pid, started in rows if not process_alive(pid, since=started)]
    now = compiler.now_utc()

    def write() -> None:
        with transaction(con):
            for run_id in dead:
                con.execute(
                    "UPDATE check_runs SET state = 'incomplete', finished_at = ?, note = ? "
                    "WHERE run_id = ? AND state = 'running'",
                    [now, "the process running this check run ended before it finished "
                          "(crash or kill); its results were never written", run_id])

    if dead:
        retrying(write)
    return dead


def new_run_id() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, default=str)


def _clipped(reason: str | None) -> str | None:
    if reason is None or len(reason) <= MAX_STORED_REASON:
        return reason
    return reason[:MAX_STORED_REASON] + f"… (cut: {len(reason):,} characters)"


def _frame(columns: dict[str, list]) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame(columns, columns=list(_RESULT_COLUMNS), dtype=object)
    for column in ("started_at", "finished_at"):
        frame[column] = pd.to_datetime(frame[column])
    return frame


def _result_columns(results: list[CheckResult]) -> dict[str, list]:
    """The stored form of the results, column by column (a run over 10k products writes ~370k
    results: row by row this took ~5 s of CPU, column by column ~1 s)."""
    columns: dict[str, list] = {}
    for name in _RESULT_COLUMNS:
        values = list(map(attrgetter(name), results))
        if name in ("measured", "threshold"):
            values = [_text(v) for v in values]
        elif name == "diagnostics":
            values = ["{}" if type(v) is dict and not v else json.dumps(v, default=str) for v in values]
        elif name == "reason":
            values = [_clipped(v) for v in values]
        columns[name] = values
    return columns


def persist(con: duckdb.DuckDBPyConnection, run: Run, *, note: str | None = None,
             actor: access.User | None = None) -> None:
    columns = _result_columns(run.results)
    frame = _frame(columns) if len(run.results) > LISTS_UP_TO else None

    def write() -> None:
        with transaction(con):
            con.execute("UPDATE check_runs SET state = ?, status = ?, finished_at = ?, note = ? WHERE run_id = ?",
                        [run.state, run.status, run.finished_at, note, run.run_id])
            if frame is not None:
                con.register("new_check_results", frame)
                try:
                    con.execute(f"INSERT INTO check_results ({', '.join(_RESULT_COLUMNS)}) "
                                f"SELECT {', '.join(_RESULT_COLUMNS)} FROM new_check_results")
                finally:
                    con.unregister("new_check_results")
            elif run.results:
                # Each column as one list parameter, unnested side by side.
                con.execute(f"INSERT INTO check_results ({', '.join(_RESULT_COLUMNS)}) SELECT "
                            + ", ".join(f"unnest(${i}::{_LIST_TYPES.get(name, 'VARCHAR')}[])"
                                        for i, name in enumerate(_RESULT_COLUMNS, start=1)),
                            [columns[name] for name in _RESULT_COLUMNS])
            check_totals.write(con, [run.run_id])  # with its results, or not at all
            if actor is not None:
                # In the run's transaction: the trail names exactly the runs that were stored.
                audit.record(con, actor=actor, action="check_run", target=f"run:{run.run_id}",
                             after={"state": run.state, "status": run.status, "counts": run.counts(),
                                    "scope": run.scope or "all"})

    audit.retry_write(con, write)  # also retries an audit seq taken by a concurrent writer
