"""Checks inside PostgreSQL through psycopg 3.

The session is read-only from the first statement (`default_transaction_read_only=on`)
and every statement has a server-side `statement_timeout` as well as a client-side cancel,
so a check can neither write nor run on after the run gave up on it. Credentials come from
catalog.servers (secrets file or environment), are passed to libpq as keywords, and are
scrubbed from any error text before it becomes a result.
"""

from __future__ import annotations

import re

import pandas as pd
import psycopg
from psycopg import sql as pgsql

from catalog import servers
from catalog.locations import Location
from checks import compiler
from checks.engines import (
    Engine,
    EngineError,
    EngineInterrupted,
    EngineQueryError,
    Rows,
    check_rule,
)

CONNECT_TIMEOUT_S = 10
# Functions a contract rule may not call: they read server files, run SQL given as text,
# change settings, or act on other sessions.
REFUSED_FUNCTIONS = ("pg_read", "pg_ls_", "pg_stat_file", "pg_file", "lo_", "dblink", "set_config",
                     "pg_sleep", "pg_terminate", "pg_cancel", "pg_reload", "pg_rotate", "query_to_",
                     "cursor_to_", "table_to_", "schema_to_", "database_to_", "pg_logdir",
                     "pg_advisory", "pg_notify", "txid_", "nextval", "setval", "pg_switch", "pg_promote")

_SCALAR_TYPES = {
    "smallint": "SMALLINT", "integer": "INTEGER", "bigint": "BIGINT", "real": "FLOAT",
    "double precision": "DOUBLE", "text": "VARCHAR", "character varying": "VARCHAR", "character": "VARCHAR",
    "uuid": "UUID", "boolean": "BOOLEAN", "date": "DATE", "timestamp without time zone": "TIMESTAMP",
    "timestamp with time zone": "TIMESTAMP WITH TIME ZONE", "time without time zone": "TIME",
    "time with time zone": "TIME WITH TIME ZONE", "json": "JSON", "jsonb": "JSON", "bytea": "BLOB",
    "interval": "INTERVAL",
}
_UDT_TYPES = {"int2": "SMALLINT", "int4": "INTEGER", "int8": "BIGINT", "float4": "FLOAT", "float8": "DOUBLE",
              "text": "VARCHAR", "varchar": "VARCHAR", "bpchar": "VARCHAR", "bool": "BOOLEAN", "date": "DATE",
              "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMP WITH TIME ZONE", "numeric": "DECIMAL",
              "uuid": "UUID", "json": "JSON", "jsonb": "JSON"}


def duckdb_type(data_type: str, udt_name: str, precision, scale) -> str:
    """A Postgres column type named as DuckDB names the same type."""
    if data_type == "numeric":
        return f"DECIMAL({precision},{scale})" if precision is not None else "DECIMAL"
    if data_type == "ARRAY":
        return _UDT_TYPES.get(udt_name.lstrip("_"), udt_name.lstrip("_").upper()) + "[]"
    return _SCALAR_TYPES.get(data_type, data_type.upper())


class PostgresEngine(Engine):
    name = "postgres"
    source_kind = "postgres"

    def __init__(self, location: Location, *, timeout_s: float):
        super().__init__()
        params = dict(location.params)
        self.server = params.get("server", "postgres")
        self.schema_name = params.get("schema", "public")
        self.table_name = params.get("table") or location.table or ""
        self.label = f"postgres server {self.server} ({location.path})"
        self.relation = f"{compiler.quote_ident(self.schema_name)}.{compiler.quote_ident(self.table_name)}"
        self.relation_native = self.relation  # Postgres quotes identifiers as DuckDB does
        self.describe_sql = ("SELECT column_name, data_type FROM information_schema.columns WHERE "
                             f"table_schema = {compiler.sql_literal(self.schema_name)} AND "
                             f"table_name = {compiler.sql_literal(self.table_name)} ORDER BY ordinal_position")
        self.timeout_ms = max(1, int(timeout_s * 1000))
        self._secrets: list[str] = []
        try:
            found = servers.credentials(self.server)
        except ValueError as exc:
            raise EngineError(f"postgres server {self.server}: {exc}") from None
        self._secrets = [found["password"]] if found.get("password") else []
        keywords = {k: v for k, v in {"user": found.get("user"), "password": found.get("password")}.items() if v}
        try:
            self.conn = psycopg.connect(
                host=params.get("host"), port=params.get("port"), dbname=params.get("dbname"),
                connect_timeout=CONNECT_TIMEOUT_S, application_name="meshgov-checks", autocommit=True,
                options=f"-c default_transaction_read_only=on -c statement_timeout={self.timeout_ms}",
                **keywords)
        except psycopg.Error as exc:
            raise EngineError(f"postgres server {self.server} ({location.path}): cannot connect: "
                              f"{self._clean(exc)}") from None

    def _clean(self, exc: BaseException) -> str:
        """The first informative line of a driver error, with any secret blanked out."""
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        text = " ".join(lines[:2])[:400] or type(exc).__name__
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return re.sub(r"password=\S+", "password=***", text)

    def _run(self, sql: str) -> Rows:
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql)
                names = [c.name for c in cur.description or []]
                return Rows(names, [tuple(r) for r in cur.fetchall()])
        except psycopg.errors.QueryCanceled as exc:
            raise EngineInterrupted(self._clean(exc)) from None
        except psycopg.Error as exc:
            raise EngineQueryError(f"{self.label}: {self._clean(exc)}") from None

    def interrupt(self) -> None:
        try:
            self.conn.cancel_safe(timeout=5)
        except psycopg.Error:
            pass

    def describe(self) -> list[tuple[str, str]]:
        try:
            with self.conn.cursor() as cur:
                cur.execute("SELECT column_name, data_type, udt_name, numeric_precision, numeric_scale "
                            "FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                            "ORDER BY ordinal_position", [self.schema_name, self.table_name])
                rows = cur.fetchall()
        except psycopg.Error as exc:
            raise EngineError(f"{self.label}: {self._clean(exc)}") from None
        if not rows:
            raise EngineError(f"table {self.schema_name}.{self.table_name} does not exist on {self.label}, "
                              "or this user may not see it")
        return [(name, duckdb_type(dtype, udt, prec, scale)) for name, dtype, udt, prec, scale in rows]

    def sample_frame(self, rows: int, seed: int) -> pd.DataFrame:
        """Bernoulli sampling with a fixed seed (REPEATABLE): reproducible while the table
        is unchanged, and read in one pass without sorting the table."""
        total = self._run(f"SELECT count(*) FROM {self.relation}").fetchall()[0][0]
        percent = 100.0 if not total else min(100.0, 100.0 * rows * 1.5 / total)
        result = self._run(f"SELECT * FROM {self.relation} TABLESAMPLE BERNOULLI ({percent:.6f}) "
                           f"REPEATABLE ({int(seed)}) LIMIT {int(rows)}")
        return pd.DataFrame(result.fetchall(), columns=[d[0] for d in result.description])

    def rule_query(self, sql: str, *, max_rows: int, allowed_tables: set[str]) -> pd.DataFrame:
        from checks.sandbox import SandboxQueryError, SandboxTimeout

        check_rule(sql, engine=self, allowed_tables=allowed_tables, refused_functions=REFUSED_FUNCTIONS)
        try:
            with self.conn.transaction(), self.conn.cursor() as cur:
                cur.execute("SET TRANSACTION READ ONLY")
                cur.execute(pgsql.SQL("SET LOCAL statement_timeout = {}").format(self.timeout_ms))
                # A rule names its table bare, as the author sees it: resolve it in the dataset's schema.
                cur.execute(pgsql.SQL("SET LOCAL search_path = {}").format(pgsql.Identifier(self.schema_name)))
                cur.execute(sql)
                names = [c.name for c in cur.description or []]
                rows = cur.fetchmany(max_rows)
                raise _Rollback(pd.DataFrame([tuple(r) for r in rows], columns=names))
        except _Rollback as done:
            return done.frame
        except psycopg.errors.QueryCanceled as exc:
            raise SandboxTimeout(f"stopped after the {self.timeout_ms / 1000:g} s statement_timeout "
                                 f"on {self.label}") from exc
        except psycopg.Error as exc:
            raise SandboxQueryError(f"{self.label}: {self._clean(exc)}") from None

    def close(self) -> None:
        conn = getattr(self, "conn", None)
        if conn is not None:
            conn.close()


class _Rollback(Exception):
    """Leaves the rule's transaction by rolling it back, carrying the answer out."""

    def __init__(self, frame: pd.DataFrame):
        super().__init__("rollback")
        self.frame = frame
