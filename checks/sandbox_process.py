"""Untrusted SQL in a child process: the parent's side (the child is checks.sandbox_child).

DuckDB's memory_limit bounds its buffer pool, not scalar builders: `SELECT len(range(1e9))`
passed 12 GB RSS in-process, and a read blocked in the kernel ignores `con.interrupt()`.
So contract rules and steward policies run in a `python -m checks.sandbox_child` process
whose address space is capped (RLIMIT_AS, set by the child before it imports DuckDB) and
which the parent kills when a query outlives its time limit plus a grace period. A limit
breach or a kill becomes a SandboxError for that one query; the next query restarts the
process and replays the session's loads, so the other rules keep their results.

`SandboxWorker` is the process (started once, reused by every session of a run: starting
one costs ~1 s of imports on these machines, so a run starts it early and shares it);
`IsolatedSandbox` is a session with the interface of `checks.sandbox.Sandbox`
(load / lock / query) that the runner and the policy engine use.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from catalog.locations import Location
from checks.sandbox import (
    SandboxError,
    SandboxLoadError,
    SandboxQueryError,
    SandboxResourceError,
    SandboxTimeout,
    SandboxViolation,
    SqlInspection,
)
from checks.sandbox_child import _HEADER

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# DuckDB's memory_limit for the sandboxed SQL of a run (contract rules and the policy pack).
SANDBOX_MEMORY = "1GB"
# The address space DuckDB needs beyond its memory_limit: Python, DuckDB's code and thread
# stacks (an idle process with 2 threads maps ~0.8 GB, most of it never resident).
ADDRESS_SPACE_OVERHEAD = 768 * 2**20
# A killed query is reported this long after its time limit at the latest: the child's own
# interrupt stops ordinary queries within ~15 ms; the kill is for what ignores interrupts.
KILL_GRACE_S = 2.0
START_TIMEOUT_S = 60.0
LOAD_TIMEOUT_S = 120.0
# What a sandboxed query may send back, whatever max_rows the caller asks for.
MAX_RESULT_ROWS = 1_000_000
MAX_RESULT_BYTES = 32 * 2**20
MAX_CELL_CHARS = 4096

_ERRORS = {cls.__name__: cls for cls in (SandboxError, SandboxLoadError, SandboxQueryError,
                                         SandboxResourceError, SandboxTimeout, SandboxViolation)}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?i?B)?\s*", re.I)
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def size_bytes(text: str) -> int:
    """'1GB' / '512MiB' / '2000000' -> bytes (DuckDB's memory_limit spelling)."""
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (expected e.g. 1GB or 512MB)")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


class _WorkerGone(Exception):
    def __init__(self, message: str, *, timed_out: bool) -> None:
        super().__init__(message)
        self.timed_out = timed_out


class SandboxWorker:
    """One sandbox child process, restarted on demand after it dies or is killed."""

    def __init__(self, *, memory_limit: str = "1GB", address_space: int | None = None) -> None:
        self.memory_limit = memory_limit
        self.address_space = address_space or size_bytes(memory_limit) + ADDRESS_SPACE_OVERHEAD
        self.generation = 0  # bumped at every (re)start: sessions replay their loads then
        self.restarts = 0
        self._proc: subprocess.Popen | None = None
        self._ready = False
        self._buffer = bytearray()
        self._tmp: str | None = None
        self._stderr = None

    def __enter__(self) -> SandboxWorker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self) -> SandboxWorker:
        """Spawn the process without waiting for it (imports overlap the caller's work)."""
        if self._proc is not None:
            return self
        self._tmp = tempfile.mkdtemp(prefix="meshgov-sandbox-proc-")
        self._stderr = tempfile.TemporaryFile(dir=self._tmp)
        env = {key: value for key, value in os.environ.items()
               if key in ("PATH", "LANG", "LC_ALL", "PYTHONHASHSEED", "VIRTUAL_ENV")}
        env.update({
            "PYTHONPATH": str(PROJECT_ROOT),
            # Spill folders and anything DuckDB might want under HOME stay in a private folder
            # removed with the worker; no extension directory appears in the user's home.
            "TMPDIR": self._tmp, "HOME": self._tmp,
            # glibc reserves 64 MB of address space per thread arena: keep that small.
            "MALLOC_ARENA_MAX": "2",
        })
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "checks.sandbox_child", str(self.address_space)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, env=env,
            cwd=self._tmp, close_fds=True)
        self._ready = False
        self._buffer.clear()
        self.generation += 1
        return self

    def request(self, header: dict, payload: bytes = b"", *, timeout_s: float) -> tuple[dict, bytes]:
        """Send one request and wait for its answer; kill the process past `timeout_s`."""
        self.start()
        deadline = time.monotonic() + timeout_s
        if not self._ready:
            ready, _ = self._receive(time.monotonic() + START_TIMEOUT_S, "starting")
            if not ready.get("ready"):
                raise self._gone("the sandbox process did not start", timed_out=False)
            self._ready = True
            deadline = time.monotonic() + timeout_s
        body = json.dumps({**header, "payload": len(payload)}).encode()
        try:
            assert self._proc is not None and self._proc.stdin is not None
            self._proc.stdin.write(_HEADER.pack(len(body)) + body + payload)
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise self._gone(f"the sandbox process is gone ({exc})", timed_out=False) from exc
        return self._receive(deadline, header.get("op", "request"))

    def inspect(self, sql: str, *, timeout_s: float) -> SqlInspection | None:
        """What sqlglot sees in `sql` (checks.sandbox.inspect_sql), parsed in the child, which
        has sqlglot loaded already: the parent never imports it (~0.3 s). None when the child
        could not answer (it is then restarted by the next request)."""
        try:
            answer, _ = self.request({"op": "inspect", "sql": sql}, timeout_s=timeout_s)
        except _WorkerGone:
            return None
        if not answer.get("ok"):
            return None
        return SqlInspection(tables=list(answer["tables"]), functions=list(answer["functions"]),
                             statements=int(answer["statements"]), problem=answer.get("problem"))

    def _receive(self, deadline: float, what: str) -> tuple[dict, bytes]:
        size = _HEADER.unpack(self._read(_HEADER.size, deadline, what))[0]
        header = json.loads(self._read(size, deadline, what))
        payload = self._read(header.get("payload", 0), deadline, what) if header.get("payload") else b""
        return header, payload

    def _read(self, size: int, deadline: float, what: str) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        while len(self._buffer) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise self._gone(f"the sandbox process was killed: {what} ran past its time limit",
                                 timed_out=True)
            readable, _, _ = select.select([fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(fd, max(size - len(self._buffer), 1 << 16))
            if not chunk:
                raise self._gone(self._death_note(what), timed_out=False)
            self._buffer += chunk
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _death_note(self, what: str) -> str:
        assert self._proc is not None
        try:
            code = self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            code = None
        tail = ""
        if self._stderr is not None:
            self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(self._stderr.tell() - 2000, 0))
            lines = [line for line in self._stderr.read().decode(errors="replace").splitlines() if line.strip()]
            tail = lines[-1][:300] if lines else ""
        limit = f"{self.address_space / 2**30:.2g} GiB"
        how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
        return (f"the sandbox process died during {what} ({how}{': ' + tail if tail else ''}); "
                f"most likely the query passed the {limit} memory cap of sandboxed SQL")

    def _gone(self, message: str, *, timed_out: bool) -> _WorkerGone:
        self.kill()
        return _WorkerGone(message, timed_out=timed_out)

    def kill(self) -> None:
        """Stop the process now; the next request starts a fresh one."""
        if self._proc is None:
            return
        proc, self._proc = self._proc, None
        if proc.poll() is None:
            proc.kill()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for stream in (proc.stdin, proc.stdout):
            try:
                if stream:
                    stream.close()
            except OSError:
                pass
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        self.restarts += 1

    def close(self) -> None:
        """Stop the process for good. Between requests it holds nothing a clean exit would
        save (an in-memory database; its private folder is removed here), so it is killed, not
        asked to exit: the clean exit (EOF, then its sandbox and interpreter shutting down)
        took 0.2-1 s at the end of every run."""
        if self._proc is None:
            return
        self.kill()
        self.restarts -= 1


@dataclasses.dataclass
class SandboxRows:
    """A sandboxed SELECT's answer as plain values (IsolatedSandbox.query_rows)."""
    columns: list[str]
    types: list[str | None]   # DuckDB's, e.g. VARCHAR, DECIMAL(10,2): what a value sent as text was
    rows: list[list]


class IsolatedSandbox:
    """A `checks.sandbox.Sandbox` living in a SandboxWorker process: load, lock, query.

    Loads are recorded so that, after a query kills the process, the next call restarts it
    and rebuilds the same sandbox before going on.
    """

    def __init__(self, worker: SandboxWorker | None = None, *, memory_limit: str = "1GB",
                 timeout_s: float = 30.0, threads: int = 2) -> None:
        self._own_worker = worker is None
        self.worker = worker or SandboxWorker(memory_limit=memory_limit)
        self.memory_limit = memory_limit
        self.timeout_s = timeout_s
        self.threads = threads
        self._replay: list[tuple[dict, bytes]] = []
        self._tables: list[str] = []
        self._generation: int | None = None
        self._locked = False

    def __enter__(self) -> IsolatedSandbox:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @property
    def tables(self) -> list[str]:
        return list(self._tables)

    def _ensure_open(self) -> None:
        if self._generation == self.worker.generation and self.worker.pid is not None:
            return
        self.worker.start()
        opening = {"op": "open", "memory_limit": self.memory_limit, "timeout_s": self.timeout_s,
                   "threads": self.threads}
        for header, payload in [(opening, b""), *self._replay]:
            try:
                answer, _ = self.worker.request(header, payload, timeout_s=LOAD_TIMEOUT_S)
            except _WorkerGone as exc:
                raise SandboxResourceError(f"the sandbox could not be rebuilt: {exc}") from exc
            if not answer.get("ok"):
                raise _error(answer)
        self._generation = self.worker.generation

    def load(self, name: str, source: Location | Any) -> None:
        if isinstance(source, Location):
            header, payload = {"op": "load", "name": name, "location": dataclasses.asdict(source)}, b""
        else:
            header, payload = {"op": "load", "name": name}, _arrow_bytes(source)
        self._ensure_open()
        try:
            answer, _ = self.worker.request(header, payload, timeout_s=LOAD_TIMEOUT_S)
        except _WorkerGone as exc:
            raise SandboxLoadError(f"cannot load {name!r}: {exc}") from exc
        if not answer.get("ok"):
            raise _error(answer, default=SandboxLoadError)
        self._replay.append((header, payload))
        self._tables.append(name)

    def lock(self) -> None:
        if self._locked:
            return
        self._ensure_open()
        try:
            answer, _ = self.worker.request({"op": "lock"}, timeout_s=LOAD_TIMEOUT_S)
        except _WorkerGone as exc:
            raise SandboxResourceError(str(exc)) from exc
        if not answer.get("ok"):
            raise _error(answer)
        self._replay.append(({"op": "lock"}, b""))
        self._locked = True

    def query(self, sql: str, params: list | dict | None = None, *, max_rows: int | None = None):
        """One SELECT, answered as a pandas DataFrame of at most `max_rows` rows (and never
        more than MAX_RESULT_ROWS rows, MAX_RESULT_BYTES bytes, MAX_CELL_CHARS per text cell)."""
        import pyarrow as pa

        return pa.ipc.open_stream(self._ask("query", sql, params, max_rows)).read_all().to_pandas()

    def query_rows(self, sql: str, params: list | dict | None = None, *,
                   max_rows: int | None = None) -> SandboxRows:
        """One SELECT, answered as SandboxRows (column names, DuckDB types, rows of Python
        values), under the limits of `query`; values JSON does not have (dates, decimals...)
        come back as their text. Neither process needs pandas or pyarrow for it."""
        found = json.loads(self._ask("rows", sql, params, max_rows))
        return SandboxRows(list(found["columns"]), list(found["types"]), list(found["rows"]))

    def _ask(self, op: str, sql: str, params: list | dict | None, max_rows: int | None) -> bytes:
        self._ensure_open()
        rows = MAX_RESULT_ROWS if max_rows is None else min(max_rows, MAX_RESULT_ROWS)
        request = {"op": op, "sql": sql, "params": params, "max_rows": rows,
                   "max_cell_chars": MAX_CELL_CHARS, "max_bytes": MAX_RESULT_BYTES}
        try:
            answer, payload = self.worker.request(request, timeout_s=self.timeout_s + KILL_GRACE_S)
        except _WorkerGone as exc:
            if exc.timed_out:
                raise SandboxTimeout(f"query stopped after the {self.timeout_s:g} s time limit "
                                     "(the sandbox process was killed)") from exc
            raise SandboxResourceError(str(exc)) from exc
        if not answer.get("ok"):
            raise _error(answer)
        return payload

    def close(self) -> None:
        if self._own_worker:
            self.worker.close()
        elif self._generation == self.worker.generation and self.worker.pid is not None:
            try:
                self.worker.request({"op": "close"}, timeout_s=LOAD_TIMEOUT_S)
            except _WorkerGone:
                pass
        self._generation = None


def _error(answer: dict, default: type[SandboxError] = SandboxError) -> SandboxError:
    cls = _ERRORS.get(answer.get("error", ""), default)
    return cls(answer.get("message") or "the sandbox failed")


def _arrow_bytes(source: Any) -> bytes:
    import pyarrow as pa

    table = source if isinstance(source, pa.Table) else pa.Table.from_pandas(source, preserve_index=False)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()
