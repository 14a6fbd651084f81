"""Contract SQL (`type: sql` quality rules): placeholders, which datasets a rule reads (parsed
with sqlglot, never bound on a connection that reaches files), the sandbox batch, and the one
reading of a rule's answer (a number, compared with its threshold). Used by the runner for
local data and by checks.engines for rules that run where the data lives.
"""

from __future__ import annotations

import re
from typing import Any

from catalog.masking import is_null
from checks import compiler
from checks.result import CheckResult
from checks.sandbox_process import KILL_GRACE_S, SANDBOX_MEMORY, IsolatedSandbox, SandboxWorker
from checks.specs import CheckSpec, passes, threshold_phrase

_TABLE_PLACEHOLDER = re.compile(r"\$\{(?:table|object|model)\}|\{(?:table|object|model)\}")
_COLUMN_PLACEHOLDER = re.compile(r"\$\{(?:column|property|field)\}|\{(?:column|property|field)\}")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _sandbox_name(dataset: Any) -> str:
    for name in (dataset.name, dataset.physical_name):
        if _PLAIN_NAME.fullmatch(name or ""):
            return name
    return re.sub(r"\W+", "_", dataset.name).strip("_") or "dataset"


def expand_placeholders(spec: CheckSpec, table: str) -> str:
    """`${table}` / `{model}` -> the dataset's table; `${column}` -> the rule's column."""
    sql = _TABLE_PLACEHOLDER.sub(table, spec.sql or "")
    if spec.physical_columns:
        sql = _COLUMN_PLACEHOLDER.sub(compiler.quote_ident(spec.physical_columns[0]).replace("\\", "\\\\"), sql)
    return sql


def _read_names(sql: str, candidates: dict[str, Any], seen: Any = None) -> set[str]:
    """The (lower-case) dataset names `sql` reads, found by parsing it with sqlglot — never
    by binding it on a DuckDB connection, which reads files, follows URLs and fetches
    extensions for the functions the SQL names. `seen`: the sandbox process's parse of it
    (SandboxWorker.inspect); None parses it here. When sqlglot cannot parse the SQL, every
    candidate named as a word in it counts (loading one too many is harmless)."""
    if seen is None:
        from checks.sandbox import inspect_sql

        seen = inspect_sql(sql)
    if seen.problem is None:
        return {name.lower() for name in seen.tables}
    return {name for name in candidates if re.search(rf"(?<![\w$]){re.escape(name)}(?![\w$])", sql, re.I)}


def run_sql_rules(specs: list[CheckSpec], datasets: dict[str, Any], *,
                  timeout_s: float = 30.0, memory_limit: str = SANDBOX_MEMORY,
                  worker: SandboxWorker | None = None) -> list[CheckResult]:
    """A contract's `type: sql` rules in one sandbox that holds the contract's datasets the
    rules name (and nothing else: a contract sees only its own data). The sandbox lives in
    a child process (checks.sandbox_process): `worker` shares a run's process; a rule that
    breaks its memory cap or time limit costs only its own result."""
    from checks.sandbox import SandboxError, SqlInspection

    by_name: dict[str, Any] = {}
    for dataset in datasets.values():
        for alias in {dataset.name, dataset.physical_name, _sandbox_name(dataset)}:
            by_name.setdefault(alias.lower(), dataset)
    prepared = []
    needed: dict[str, Any] = {}
    results: list[CheckResult] = []
    with IsolatedSandbox(worker, memory_limit=memory_limit, timeout_s=timeout_s) as box:
        for spec in specs:
            own = datasets.get(spec.dataset or "")
            sql = expand_placeholders(spec, _sandbox_name(own) if own else (spec.dataset or ""))
            reads = set()
            # Parsed in the sandbox process (sqlglot is loaded there); SQL it could not parse
            # there is matched by words, as SQL sqlglot cannot parse.
            seen = box.worker.inspect(sql, timeout_s=timeout_s + KILL_GRACE_S) or SqlInspection(
                problem="the sandbox process could not parse it")
            for name in _read_names(sql, by_name, seen):
                hit = by_name.get(name)
                if hit is not None:
                    needed[_sandbox_name(hit)] = hit
                    reads.add(_sandbox_name(hit).lower())
            prepared.append((spec, sql, reads))
        load_errors: dict[str, str] = {}
        for table, dataset in needed.items():
            if dataset.location is None:
                load_errors[table] = f"dataset {dataset.name} has no local server: nothing to load"
                continue
            try:
                box.load(table, dataset.location)
            except SandboxError as exc:
                load_errors[table] = str(exc)
        for spec, sql, reads in prepared:
            results.append(_sql_result(box, spec, sql, load_errors, needed, reads))
    return results


def _sql_result(box, spec: CheckSpec, sql: str, load_errors: dict[str, str], needed: dict,
                reads: set[str]) -> CheckResult:
    from checks.sandbox import SandboxError, SandboxTimeout, SandboxViolation

    started = compiler.now_utc()
    threshold = compiler.describe_threshold(spec.operator, spec.threshold, "")

    def result(status: str, reason: str, measured=None, diagnostics=None) -> CheckResult:
        return CheckResult(
            check_id=spec.check_id, kind=spec.kind, target=spec.target, status=status,  # type: ignore[arg-type]
            reason=reason, measured=compiler.json_safe(measured), threshold=threshold or None,
            product_id=spec.product_id, dataset=spec.dataset, column_name=", ".join(spec.columns) or None,
            diagnostics=compiler.json_safe({"sandbox": True, "tables": sorted(needed), **(diagnostics or {})}),
            sql=sql, contract_id=spec.contract_id, contract_version=spec.contract_version,
            started_at=started, finished_at=compiler.now_utc())

    broken = [f"{t}: {why}" for t, why in load_errors.items() if t.lower() in reads]
    if broken:
        return result("error", "cannot load the data this rule reads — " + "; ".join(broken))
    try:
        answer = box.query_rows(sql, max_rows=2)
    except SandboxTimeout as exc:
        return result("error", f"timed out: {exc}")
    except SandboxViolation as exc:
        return result("error", f"sandbox refused the rule: {exc}")
    except SandboxError as exc:
        return result("error", f"the rule's SQL failed: {exc}")
    rows, columns = len(answer.rows), len(answer.columns)
    if (rows, columns) != (1, 1):
        return result("error", f"a sql rule must return one value (one row, one column); it returned "
                               f"{'at least ' if rows == 2 else ''}{rows} row(s) x {columns} column(s)")
    value = _measured_number(answer.rows[0][0], answer.types[0])
    if isinstance(value, str):
        # The value itself is never kept: a rule over personal data could return the data.
        return result("error", f"a sql rule must return a number; it returned {value}")
    try:
        ok = passes(spec.operator, spec.threshold, value)
    except TypeError:
        return result("error", f"the rule returned {value!r}, which cannot be compared with {threshold}", value)
    shown = f"{value:.4g}" if isinstance(value, float) else str(value)
    phrase = threshold_phrase(spec.operator, spec.threshold, "")
    if ok:
        return result("passed", f"returned {shown}; {phrase}", value)
    reason = f"returned {shown}; {phrase}" + (f" ({spec.description})" if spec.description else "")
    return result(spec.failing_status, reason, value)


_TYPE_WORDS = {"BLOB": "bytes", "VARCHAR": "text"}


def _measured_number(value: Any, duck_type: str | None = None) -> int | float | str:
    """The rule's value as an int or float, or (as a str) what kind of value it was instead.
    `duck_type`: the DuckDB type of a value the sandbox process sent as text (a DECIMAL)."""
    import decimal
    import math

    value = value.item() if hasattr(value, "item") and not isinstance(value, str) else value
    if duck_type is not None and isinstance(value, str) and duck_type.upper() != "VARCHAR":
        if duck_type.upper().startswith("DECIMAL"):
            value = decimal.Decimal(value)
        else:  # sent as text because JSON has no such value
            return f"a value of type {_TYPE_WORDS.get(duck_type.upper(), duck_type.lower())} (its content is not stored)"
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return "NULL" if math.isnan(value) else value
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if is_null(value):
        return "NULL"
    kind = {str: "text", bytes: "bytes"}.get(type(value), type(value).__name__)
    return f"a value of type {kind} (its content is not stored)"


