"""Checks as Spark SQL over a dataset's files, through pyspark.

One SparkSession per process, started on first use (it costs seconds: a JVM) and reused.
Settings: `MESHGOV_SPARK_MASTER` (default `local[2]`: tests and one machine; a cluster URL
in production), `MESHGOV_SPARK_DRIVER_MEMORY` (default 2g), `MESHGOV_SPARK_SHUFFLE_PARTITIONS`
(default 2: right for local mode, raise it on a cluster) and `MESHGOV_SPARK_JAVA_OPTIONS`
(the tests use `-XX:+UseSerialGC -XX:TieredStopAtLevel=1`: a JVM that starts in half the time
on a loaded machine, at the cost of peak speed on big scans). The session time zone is
UTC so timestamps mean what they mean in DuckDB. A dataset is a temporary view over its
file; every query runs in a job group that a timer cancels at the time limit.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
import uuid

import pandas as pd

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

# Functions a contract rule may not call: reflection runs arbitrary Java; the others read
# files or settings.
REFUSED_FUNCTIONS = ("reflect", "java_method", "try_reflect", "read_files", "input_file", "current_catalog",
                     "session_user", "spark_partition_id")

_session = None
_session_lock = threading.Lock()


def spark_session():
    """The process's SparkSession (started once)."""
    global _session
    with _session_lock:
        if _session is None:
            if os.environ.get("MESHGOV_SPARK_MASTER", "local").startswith("local"):
                os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # local mode: no public interface
            try:
                from pyspark.sql import SparkSession
            except ImportError as exc:
                raise EngineError(f"Spark is not available: {exc}") from None
            try:
                _session = (SparkSession.builder
                            .master(os.environ.get("MESHGOV_SPARK_MASTER", "local[2]"))
                            .appName("meshgov-checks")
                            .config("spark.ui.enabled", "false")
                            .config("spark.ui.showConsoleProgress", "false")
                            .config("spark.sql.session.timeZone", "UTC")
                            .config("spark.sql.shuffle.partitions",
                                    os.environ.get("MESHGOV_SPARK_SHUFFLE_PARTITIONS", "2"))
                            .config("spark.driver.memory", os.environ.get("MESHGOV_SPARK_DRIVER_MEMORY", "2g"))
                            .config("spark.driver.extraJavaOptions",
                                    os.environ.get("MESHGOV_SPARK_JAVA_OPTIONS", ""))
                            .getOrCreate())
                _session.sparkContext.setLogLevel("ERROR")
            except Exception as exc:  # noqa: BLE001 - Java missing, port taken...: say so
                raise EngineError(f"cannot start Spark ({type(exc).__name__}): "
                                  f"{str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ''}") from None
        return _session


def stop_session() -> None:
    global _session
    with _session_lock:
        if _session is not None:
            _session.stop()
            _session = None


_SIMPLE_TYPES = {"string": "VARCHAR", "int": "INTEGER", "bigint": "BIGINT", "smallint": "SMALLINT",
                 "tinyint": "TINYINT", "double": "DOUBLE", "float": "FLOAT", "boolean": "BOOLEAN",
                 "date": "DATE", "timestamp": "TIMESTAMP WITH TIME ZONE", "timestamp_ntz": "TIMESTAMP",
                 "binary": "BLOB", "void": "NULL"}


def duckdb_type(simple: str) -> str:
    """A Spark type (simpleString) named as DuckDB names the same type."""
    if simple.startswith("decimal"):
        return simple.upper().replace(" ", "")
    if simple.startswith("array<") and simple.endswith(">"):
        return duckdb_type(simple[6:-1]) + "[]"
    if simple.startswith(("struct<", "map<")):
        return simple.split("<", 1)[0].upper() + "(" + simple.split("<", 1)[1][:-1] + ")"
    return _SIMPLE_TYPES.get(simple, simple.upper())


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:400]


class SparkEngine(Engine):
    name = "spark"

    def __init__(self, location: Location, *, timeout_s: float):
        super().__init__()
        self.timeout_s = timeout_s
        self.source_kind = location.kind
        self.label = f"Spark ({location.kind} file {location.path})"
        if location.refused:
            raise EngineError(location.refused)
        if not os.path.isfile(location.path):
            raise EngineError(f"data file {location.path} does not exist")
        self.spark = spark_session()
        self.table_name = "meshgov_ds_" + hashlib.sha1(location.path.encode()).hexdigest()[:12]
        self.schema_name = ""
        self.relation = compiler.quote_ident(self.table_name)
        self.relation_native = f"`{self.table_name}`"
        self.describe_sql = f"DESCRIBE TABLE {self.relation_native}"
        self._group = None
        self._cancelled = False
        reader = self.spark.read
        try:
            if location.kind == "parquet":
                frame = reader.parquet(location.path)
            elif location.kind == "csv":
                frame = reader.option("header", "true").option("inferSchema", "true").csv(location.path)
            elif location.kind == "json":
                frame = reader.json(location.path)
            else:
                raise EngineError(f"Spark reads parquet, csv and json files, not {location.kind}")
            frame.createOrReplaceTempView(self.table_name)
        except EngineError:
            raise
        except Exception as exc:  # noqa: BLE001 - AnalysisException, Py4JJavaError
            raise EngineError(f"{self.label}: cannot read: {_first_line(exc)}") from None
        self.frame = frame

    def alias(self, names: set[str]) -> None:
        for name in names:
            if name and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                self.frame.createOrReplaceTempView(name)

    def _run(self, sql: str) -> Rows:
        context = self.spark.sparkContext
        self._group = f"meshgov-{uuid.uuid4().hex[:8]}"
        self._cancelled = False
        context.setJobGroup(self._group, "meshgov check", interruptOnCancel=True)
        try:
            result = self.spark.sql(sql)
            names = result.columns
            return Rows(names, [tuple(row) for row in result.collect()])
        except Exception as exc:  # noqa: BLE001 - every pyspark / py4j failure is a query error
            if self._cancelled:
                raise EngineInterrupted(f"Spark job cancelled at the time limit: {_first_line(exc)}") from None
            raise EngineQueryError(f"{self.label}: {_first_line(exc)}") from None

    def interrupt(self) -> None:
        if self._group:
            self._cancelled = True
            self.spark.sparkContext.cancelJobGroup(self._group)

    def describe(self) -> list[tuple[str, str]]:
        return [(f.name, duckdb_type(f.dataType.simpleString())) for f in self.frame.schema.fields]

    def sample_frame(self, rows: int, seed: int) -> pd.DataFrame:
        total = self.frame.count()
        fraction = 1.0 if not total else min(1.0, rows * 1.5 / total)
        picked = self.frame.sample(withReplacement=False, fraction=fraction, seed=seed).limit(rows)
        return pd.DataFrame([tuple(r) for r in picked.collect()], columns=picked.columns)

    def rule_query(self, sql: str, *, max_rows: int, allowed_tables: set[str]) -> pd.DataFrame:
        from checks.sandbox import SandboxQueryError, SandboxTimeout

        check_rule(sql, engine=self, allowed_tables=allowed_tables, refused_functions=REFUSED_FUNCTIONS)
        timer = threading.Timer(self.timeout_s, self.interrupt)
        timer.start()
        try:
            rows = self._run(f"SELECT * FROM ({sql}) AS rule_answer LIMIT {int(max_rows)}")
        except EngineInterrupted as exc:
            raise SandboxTimeout(str(exc)) from None
        except EngineQueryError as exc:
            raise SandboxQueryError(str(exc)) from None
        finally:
            timer.cancel()
        return pd.DataFrame(rows.fetchall(), columns=[d[0] for d in rows.description])
