"""Checks run where the data lives: the compiler's checks pushed down to PostgreSQL or Spark.

checks.compiler compiles every spec to DuckDB SQL over a relation; an engine here takes
that SQL, transpiles it (checks.dialects) and runs it on the server or cluster, and the
compiler's own measuring and judging code (`_measure`: counts, thresholds, freshness,
failing-row samples with PII masked in the query) turns the answers into results. So a
check means the same thing on every engine, and only what an engine cannot answer exactly
differs: that check ends `skipped` with the reason.

An engine looks like the part of a DuckDB connection the compiler uses (`execute` with
`fetchall` / `fetchmany` / `description`, `interrupt`), and its failures are DuckDB error
classes (`EngineQueryError`, `EngineInterrupted`), so the compiler's error handling applies
unchanged. Connection problems (server down, wrong password, missing table, no permission)
become `error` results naming the server and the cause; no secret is ever part of a message.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any

import duckdb
import pandas as pd

from catalog.locations import Location
from checks import compiler, dialects, measure
from checks.result import CheckResult
from checks.specs import CheckSpec


class EngineError(Exception):
    """The engine cannot be reached or the dataset cannot be opened; the message names the
    server and the cause, never a secret."""


class EngineQueryError(duckdb.Error):
    """A query failed on the engine (the compiler catches duckdb.Error)."""


class EngineInterrupted(duckdb.InterruptException):
    """A query was stopped at the time limit (the compiler turns this into QueryTimeout)."""


class Rows:
    """A fetched answer, shaped like the DuckDB cursor the compiler reads."""

    def __init__(self, names: list[str], rows: list[tuple]):
        self.description = [(name,) for name in names]
        self._rows = rows
        self._at = 0

    def fetchall(self) -> list[tuple]:
        rest, self._at = self._rows[self._at:], len(self._rows)
        return rest

    def fetchmany(self, size: int) -> list[tuple]:
        part = self._rows[self._at:self._at + size]
        self._at += len(part)
        return part


class Engine:
    """Base of the pushed-down engines. Subclasses set `name`, `relation` (DuckDB SQL),
    `label` (server / file for messages), `source_kind`, and implement `_run`."""

    name = "duckdb"
    relation = ""
    label = ""
    source_kind = ""
    describe_sql = ""

    def __init__(self) -> None:
        self._translated: dict[str, str] = {}

    @property
    def capabilities(self) -> dialects.Capabilities:
        return dialects.CAPABILITIES[self.name]

    def translate(self, duck_sql: str) -> str:
        if duck_sql not in self._translated:
            self._translated[duck_sql] = dialects.transpile(duck_sql, self.name)
        return self._translated[duck_sql]

    def execute(self, duck_sql: str) -> Rows:
        try:
            native = self.translate(duck_sql)
        except ValueError as exc:
            raise EngineQueryError(str(exc)) from None
        return self._run(native)

    def _run(self, sql: str) -> Rows:
        raise NotImplementedError

    def interrupt(self) -> None:
        raise NotImplementedError

    def describe(self) -> list[tuple[str, str]]:
        """(column, DuckDB type name) in table order: types are named as DuckDB names them,
        so type checks and the schema check's measured value agree across engines."""
        raise NotImplementedError

    def sample_frame(self, rows: int, seed: int) -> pd.DataFrame:
        raise NotImplementedError

    def rule_query(self, sql: str, *, max_rows: int, allowed_tables: set[str]) -> pd.DataFrame:
        """A contract-written rule, read-only, one statement; raises checks.sandbox errors."""
        raise NotImplementedError

    def alias(self, names: set[str]) -> None:
        """Make the dataset answer to the names a rule's author uses (Spark: extra views)."""

    def close(self) -> None:
        pass

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def open_engine(location: Location, *, timeout_s: float) -> Engine:
    """The engine for a pushed-down location; raises EngineError naming server and cause."""
    if location.engine == "postgres":
        from checks.engines.postgres import PostgresEngine
        return PostgresEngine(location, timeout_s=timeout_s)
    if location.engine == "spark":
        from checks.engines.spark import SparkEngine
        return SparkEngine(location, timeout_s=timeout_s)
    raise EngineError(f"no engine named {location.engine!r} (duckdb, postgres, spark)")


def _where(location: Location) -> dict[str, Any]:
    params = dict(location.params)
    found = {"engine": location.engine}
    if params.get("server"):
        found["server"] = params["server"]
    found["location"] = location.path
    return found


def _on_engine(result: CheckResult, engine: Engine, where: dict) -> CheckResult:
    """Show the SQL the engine ran (not the DuckDB form it was compiled to)."""
    result.diagnostics = {**where, **(result.diagnostics or {})}
    if result.sql and result.sql.startswith("DESCRIBE "):
        result.sql = engine.describe_sql
    elif result.sql:
        result.diagnostics["compiled_sql"] = result.sql
        result.sql = engine.translate(result.sql)
    if result.diagnostics.get("sample_sql"):
        result.diagnostics["sample_sql"] = engine.translate(result.diagnostics["sample_sql"])
    return result


def run_dataset_on_engine(specs: list[CheckSpec], target: measure.DatasetTarget, *, timeout_s: float,
                          now: dt.datetime | None, on_result: Callable[[CheckResult], None],
                          extra_mask: Iterable[str] = ()) -> None:
    """checks.measure.run_dataset for a dataset that lives on PostgreSQL or Spark."""
    location = target.location
    assert location is not None
    where = _where(location)
    started = compiler.now_utc()

    def all_fail(reason: str) -> None:
        for spec in specs:
            on_result(compiler._result(spec, "error", reason, diagnostics=where, started=started))

    try:
        engine = open_engine(location, timeout_s=timeout_s)
    except EngineError as exc:
        all_fail(str(exc))
        return
    with engine:
        try:
            described = engine.describe()
            total = compiler._run_query(engine, f"SELECT count(*) FROM {engine.relation}", timeout_s)[0][0]
        except (EngineError, duckdb.Error, compiler.QueryTimeout) as exc:
            all_fail(f"cannot read {engine.label}: {compiler._error_text(exc)}")
            return
        keys = next((s.physical_columns for s in specs if s.metric == "primary_key"), ())
        columns = compiler.DatasetColumns(types=dict(described), keys=tuple(keys))
        masked = {*target.pii_columns, *extra_mask}
        columns.pii = {hit for name in masked if (hit := columns.find(name))}
        context = measure._RunContext(con=engine, relation=engine.relation, total=int(total),  # type: ignore[arg-type]
                                       timeout_s=timeout_s, now=now or dt.datetime.now(dt.UTC),
                                       plan="per_check", source_kind=engine.source_kind)
        for spec in specs:
            check = compiler._compile_or_error(spec, relation=engine.relation, columns=columns)
            problem = _cannot_answer(engine, check)
            if problem:
                result = compiler._result(spec, "skipped", f"{engine.name} cannot answer this check exactly: "
                                          f"{problem}", sql=check.query, diagnostics=where, started=started)
                result.diagnostics["compiled_sql"] = check.query
                on_result(result)
                continue
            on_result(_on_engine(measure._measure(context, check, None, combined_sql=None), engine, where))


def _cannot_answer(engine: Engine, check: compiler.CompiledCheck) -> str | None:
    if check.measure in ("skip", "error", "schema"):
        return None
    for sql in (check.query, check.sample):
        if not sql:
            continue
        problem = dialects.unsupported(sql, engine.name)
        if problem:
            return problem
        try:
            engine.translate(sql)
        except ValueError as exc:
            return str(exc)
    return None


def sample_frame(location: Location, *, rows: int, seed: int, timeout_s: float = 60.0) -> pd.DataFrame:
    """A reproducible sample of a pushed-down dataset, for the PII scanner."""
    with open_engine(location, timeout_s=timeout_s) as engine:
        return engine.sample_frame(rows, seed)


def head_rows(location: Location, *, limit: int, timeout_s: float = 30.0) -> pd.DataFrame:
    """The first rows of a pushed-down dataset (previews); raises EngineError."""
    engine = open_engine(location, timeout_s=timeout_s)
    with engine:
        try:
            rows = engine.execute(f"SELECT * FROM {engine.relation} LIMIT {int(limit)}")
        except duckdb.Error as exc:
            raise EngineError(f"cannot read {engine.label}: {compiler._error_text(exc)}") from None
        return pd.DataFrame(rows.fetchall(), columns=[d[0] for d in rows.description])


def run_sql_rules_on_engine(specs: list[CheckSpec], dataset, *, timeout_s: float) -> list[CheckResult]:
    """A contract's `type: sql` rules for a dataset on PostgreSQL / Spark, run there: the
    author wrote them in that engine's SQL. Read-only, one statement, only the dataset's
    own table, a time limit (each engine says how); judged as the sandbox's rules are."""
    from checks import sql_rules

    location: Location = dataset.location
    where = _where(location)
    started = compiler.now_utc()
    try:
        engine = open_engine(location, timeout_s=timeout_s)
    except EngineError as exc:
        return [compiler._result(spec, "error", str(exc), diagnostics=where, started=started)
                for spec in specs]
    results = []
    with engine:
        names = {dataset.name, dataset.physical_name}
        engine.alias(names)
        box = _RuleBox(engine, names)
        for spec in specs:
            if engine.name == "spark" and spec.physical_columns:
                # Spark reads "x" as a string: a column placeholder becomes a backquoted name.
                quoted = "`" + spec.physical_columns[0].replace("`", "``") + "`"
                spec = dataclasses.replace(spec, sql=sql_rules._COLUMN_PLACEHOLDER.sub(quoted, spec.sql or ""))
            sql = sql_rules.expand_placeholders(spec, engine.relation_native)
            result = sql_rules._sql_result(box, spec, sql, {}, {}, set())
            result.diagnostics = {k: v for k, v in {**where, **result.diagnostics}.items()
                                  if k not in ("sandbox", "tables")}
            result.diagnostics["read_only"] = engine.capabilities.read_only_rules
            results.append(result)
    return results


class _RuleBox:
    """The sandbox interface sql_rules._sql_result expects, backed by an engine."""

    def __init__(self, engine: Engine, names: set[str]):
        self.engine = engine
        self.names = {n for n in names if n}

    def query(self, sql: str, max_rows: int) -> pd.DataFrame:
        return self.engine.rule_query(sql, max_rows=max_rows, allowed_tables=self.names)

    def query_rows(self, sql: str, max_rows: int):
        from checks.sandbox_process import SandboxRows

        frame = self.query(sql, max_rows=max_rows)
        return SandboxRows([str(c) for c in frame.columns], [None] * len(frame.columns),
                           [list(row) for row in frame.itertuples(index=False, name=None)])


def check_rule(sql: str, *, engine: Engine, allowed_tables: set[str],
               refused_functions: tuple[str, ...]) -> None:
    """The DuckDB sandbox's refusal rules where they apply to an engine's own SQL: exactly
    one SELECT, no function that reads files, runs SQL text or changes settings, and no
    table but the dataset's own (a contract sees only its data). Raises SandboxViolation."""
    import sqlglot
    from sqlglot import exp

    from checks.sandbox import SandboxViolation

    try:
        statements = [s for s in sqlglot.parse(sql, read=engine.capabilities.dialect) if s is not None]
    except sqlglot.errors.ParseError as exc:
        raise SandboxViolation(f"cannot read the rule as one {engine.name} SELECT: "
                               f"{str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise SandboxViolation(f"a rule must be exactly one statement; this has {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise SandboxViolation(f"only a SELECT may run; this is {tree.key.upper()}")
    for node in tree.find_all(exp.Func):
        name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
        if name.startswith(refused_functions):
            raise SandboxViolation(f"refused: {name}() reads files, runs SQL text or changes settings")
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    allowed = {n.lower() for n in allowed_tables} | {engine.table_name.lower()}
    for table in tree.find_all(exp.Table):
        name = table.name.lower()
        if name in ctes and not table.db:
            continue
        if name not in allowed or (table.db and table.db.lower() != engine.schema_name.lower()):
            shown = ".".join(p for p in (table.db, table.name) if p)
            raise SandboxViolation(f"refused: table {shown} is not this dataset's table "
                                   f"({engine.relation_native}); a rule sees only its own data")
