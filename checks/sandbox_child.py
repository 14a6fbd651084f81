"""The sandbox process: runs untrusted SQL for a parent meshgov process (checks.sandbox_process).

Started as `python -m checks.sandbox_child ADDRESS_SPACE_BYTES`. Before anything else it caps
its own address space (RLIMIT_AS), so a query that builds a huge value (`range(1e9)`,
`repeat('x', 1.5e9)`) fails to allocate here — DuckDB's memory_limit bounds its buffer pool,
not such scalar builders — and cannot take the parent down with it. It then serves requests
on stdin, one at a time, each answered on the original stdout:

    frame = 4-byte big-endian length + JSON header [+ header["payload"] raw bytes]

Requests: open (a fresh locked-down `checks.sandbox.Sandbox`), load (a Location, or an
Arrow IPC stream as payload), lock, query (answer: an Arrow IPC stream of at most
`max_rows` rows, text cells cut to `max_cell_chars`, refused past `max_bytes`), rows (the
same answer as JSON: {"columns": [...], "types": [DuckDB types], "rows": [[...]]}, values
other than JSON's own as their text), inspect (what `checks.sandbox.inspect_sql` finds in some SQL; needs no open
sandbox), close. pyarrow is imported only for the requests that carry Arrow data: the
policy pack loads DuckDB tables and asks for rows, so its process starts without it.
Errors are answered, never raised: {"ok": false, "error": <SandboxError class>, "message"}.
"""

from __future__ import annotations

import json
import os
import resource
import struct
import sys

_HEADER = struct.Struct(">I")


def _read_exact(stream, size: int) -> bytes:
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return bytes(data)


def _receive(stream) -> tuple[dict, bytes]:
    (size,) = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    header = json.loads(_read_exact(stream, size))
    payload = _read_exact(stream, header.get("payload", 0)) if header.get("payload") else b""
    return header, payload


def send(stream, header: dict, payload: bytes = b"") -> None:
    body = json.dumps({**header, "payload": len(payload)}).encode()
    stream.write(_HEADER.pack(len(body)) + body + payload)
    stream.flush()


def _cell(value, max_chars: int | None):
    """One value of a `rows` answer as JSON: text cut to `max_chars`, lists and structs kept,
    anything else (dates, decimals, UUIDs...) as its text, as str() would show it."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, list | tuple):
        return [_cell(v, max_chars) for v in value]
    if isinstance(value, dict):
        return {str(k): _cell(v, max_chars) for k, v in value.items()}
    text = value if isinstance(value, str) else str(value)
    return text[:max_chars] if max_chars is not None else text


def main() -> None:
    limit = int(sys.argv[1])
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # The protocol owns the original stdout; anything DuckDB or Python prints goes to stderr.
    answers = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    requests = os.fdopen(os.dup(0), "rb", buffering=0)
    os.close(0)

    from catalog.locations import Location
    from checks.sandbox import Sandbox, SandboxError, inspect_sql

    # Every query is parsed by sqlglot too (the name filter): load it and its DuckDB dialect
    # now, while the parent is still busy with its own start, not on the first query.
    inspect_sql("SELECT 1")
    box: Sandbox | None = None
    send(answers, {"ok": True, "ready": os.getpid()})
    while True:
        try:
            request, payload = _receive(requests)
        except EOFError:
            break
        op = request.get("op")
        try:
            if op == "open":
                if box is not None:
                    box.close()
                box = Sandbox(memory_limit=request["memory_limit"], timeout_s=request["timeout_s"],
                              threads=request.get("threads", 2))
                send(answers, {"ok": True})
            elif op == "inspect":  # what sqlglot sees in some SQL: the parent does not load sqlglot
                seen = inspect_sql(request["sql"])
                send(answers, {"ok": True, "tables": seen.tables, "functions": seen.functions,
                               "statements": seen.statements, "problem": seen.problem})
            elif box is None:
                send(answers, {"ok": False, "error": "SandboxError", "message": "no sandbox is open"})
            elif op == "load":
                if "location" in request:
                    box.load(request["name"], Location(**request["location"]))
                else:
                    import pyarrow as pa

                    box.load(request["name"], pa.ipc.open_stream(payload).read_all())
                send(answers, {"ok": True})
            elif op == "lock":
                box.lock()
                send(answers, {"ok": True})
            elif op == "rows":
                columns, types, rows = box.query_rows(request["sql"], request.get("params"),
                                                      max_rows=request["max_rows"])
                cut = request.get("max_cell_chars")
                data = json.dumps({"columns": columns, "types": types,
                                   "rows": [[_cell(v, cut) for v in row] for row in rows]}).encode()
                if len(data) > request["max_bytes"]:
                    send(answers, {"ok": False, "error": "SandboxResourceError",
                                   "message": f"the result is {len(data):,} bytes, more than the "
                                              f"{request['max_bytes']:,} bytes a sandboxed query may return"})
                else:
                    send(answers, {"ok": True, "rows": len(rows)}, data)
            elif op == "query":
                import pyarrow as pa

                table = box.query_arrow(request["sql"], request.get("params"),
                                        max_rows=request["max_rows"],
                                        max_cell_chars=request.get("max_cell_chars"))
                sink = pa.BufferOutputStream()
                with pa.ipc.new_stream(sink, table.schema) as writer:
                    writer.write_table(table)
                data = sink.getvalue().to_pybytes()
                if len(data) > request["max_bytes"]:
                    send(answers, {"ok": False, "error": "SandboxResourceError",
                                   "message": f"the result is {len(data):,} bytes, more than the "
                                              f"{request['max_bytes']:,} bytes a sandboxed query may return"})
                else:
                    send(answers, {"ok": True, "rows": table.num_rows}, data)
            elif op == "close":
                box.close()
                box = None
                send(answers, {"ok": True})
            else:
                send(answers, {"ok": False, "error": "SandboxError", "message": f"unknown request {op!r}"})
        except SandboxError as exc:
            send(answers, {"ok": False, "error": type(exc).__name__, "message": str(exc)})
        except MemoryError:
            send(answers, {"ok": False, "error": "SandboxResourceError",
                           "message": f"the sandbox process ran out of its {limit / 2**30:.2g} GiB "
                                      "address space"})
        except Exception as exc:  # noqa: BLE001 - every failure is an answer, the parent decides
            send(answers, {"ok": False, "error": "SandboxQueryError",
                           "message": f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"})
    if box is not None:
        box.close()


if __name__ == "__main__":
    main()
