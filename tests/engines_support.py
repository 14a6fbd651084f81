"""Real engines for tests: a throwaway PostgreSQL cluster and the planted-defects dataset.

The cluster is Debian's PostgreSQL 15, initialised in a temporary folder as the `postgres`
user (initdb refuses root), listening on a free port of 127.0.0.1 only, with its socket in
that folder; it is stopped and removed when the test session ends. When the binaries or the
`postgres` user are missing the fixtures fail with the install command: bin/test installs
them, so a skip would hide a broken CI.

One cluster per process (`cluster()` caches it) however many test modules use it.
"""

from __future__ import annotations

import atexit
import datetime as dt
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

PG_BIN = Path(os.environ.get("MESHGOV_PG_BIN", "/usr/lib/postgresql/15/bin"))
ADMIN = "meshgov_admin"
CHECKER = "meshgov_checker"
# Distinctive on purpose: tests search every output and stored result for it.
CHECKER_PASSWORD = "Pw-7f3k!q9-never-shown"
DATABASE = "meshgov_test"
INSTALL = "apt-get install -y postgresql openjdk-17-jre-headless (bin/test does this)"
NOW = dt.datetime(2026, 11, 30, 12, 0, 0)


@dataclass
class Cluster:
    host: str
    port: int
    folder: Path
    admin_password: str

    def connect(self, *, dbname: str = DATABASE, user: str = ADMIN, password: str | None = None):
        import psycopg
        return psycopg.connect(host=self.host, port=self.port, dbname=dbname, user=user,
                               password=password or self.admin_password, autocommit=True)

    def stop(self) -> None:
        if (self.folder / "data" / "postmaster.pid").exists():
            subprocess.run(["runuser", "-u", "postgres", "--", str(PG_BIN / "pg_ctl"), "-D",
                            str(self.folder / "data"), "-m", "immediate", "-w", "stop"],
                           capture_output=True, check=False)
        shutil.rmtree(self.folder, ignore_errors=True)


_cluster: Cluster | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cluster() -> Cluster:
    """Start (once per process) a PostgreSQL cluster with a read-only checker role."""
    global _cluster
    if _cluster is not None:
        return _cluster
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL binaries not found in {PG_BIN}: {INSTALL}")
    folder = Path(tempfile.mkdtemp(prefix="meshgov-pg-", dir="/tmp"))
    folder.chmod(0o755)
    shutil.chown(folder, "postgres", "postgres")
    password = "admin-" + os.urandom(8).hex()
    pwfile = folder / "pw"
    pwfile.write_text(password + "\n")
    shutil.chown(pwfile, "postgres", "postgres")
    as_postgres = ["runuser", "-u", "postgres", "--"]
    done = subprocess.run([*as_postgres, str(PG_BIN / "initdb"), "-D", str(folder / "data"), "-U", ADMIN,
                           "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync"],
                          capture_output=True, text=True)
    if done.returncode:
        pytest.fail(f"initdb failed: {done.stderr[-800:]}")
    port = free_port()
    done = subprocess.run([*as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(folder / "data"), "-l",
                           str(folder / "server.log"), "-w", "-t", "60",
                           "-o", f"-p {port} -k {folder} -h 127.0.0.1 -c fsync=off", "start"],
                          capture_output=True, text=True)
    if done.returncode:
        log = (folder / "server.log").read_text()[-800:] if (folder / "server.log").exists() else ""
        pytest.fail(f"pg_ctl start failed: {done.stderr[-400:]} {log}")
    _cluster = Cluster("127.0.0.1", port, folder, password)
    atexit.register(_cluster.stop)
    with _cluster.connect(dbname="postgres") as con:
        con.execute(f"CREATE DATABASE {DATABASE}")
        con.execute(f"CREATE ROLE {CHECKER} LOGIN PASSWORD '{CHECKER_PASSWORD}'")
    with _cluster.connect() as con:
        con.execute(f"GRANT USAGE ON SCHEMA public TO {CHECKER}")
        con.execute(f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO {CHECKER}")
    return _cluster


@pytest.fixture(scope="session")
def pg_cluster():
    found = cluster()
    yield found
    found.stop()


@pytest.fixture(scope="session")
def spark_session():
    """The process's Spark session, started with a JVM tuned for a fast start (a loaded
    2-core machine took 50-180 s otherwise), stopped at the end of the session."""
    os.environ.setdefault("MESHGOV_SPARK_JAVA_OPTIONS", "-XX:+UseSerialGC -XX:TieredStopAtLevel=1")
    os.environ.setdefault("MESHGOV_SPARK_SHUFFLE_PARTITIONS", "1")
    from checks.engines import spark
    if shutil.which("java") is None:
        pytest.fail(f"java not found: {INSTALL}")
    session = spark.spark_session()
    yield session
    spark.stop_session()


# --- the planted-defects dataset -----------------------------------------------------------


def defects_frame(rows: int = 200) -> pd.DataFrame:
    """Orders with planted defects: 2 duplicated ids, 3 null emails, 2 malformed emails, 2
    unknown statuses, 3 amounts out of range, 1 null country, 1 duplicated email, and the
    newest update 3 days before NOW (stale for a 1-day latency)."""
    base = NOW - dt.timedelta(days=3, hours=rows - 1)
    frame = pd.DataFrame({
        "order_id": pd.array(range(1, rows + 1), dtype="int64"),
        "email": [f"user{i}@example.com" for i in range(rows)],
        "status": [("placed", "shipped", "delivered")[i % 3] for i in range(rows)],
        "amount": [float(10 + i % 90) for i in range(rows)],
        "country": [("DE", "FR", "NL", "ES")[i % 4] for i in range(rows)],
        "updated_at": [base + dt.timedelta(hours=i) for i in range(rows)],
    })
    frame.loc[[5, 6], "order_id"] = [5, 5]                  # duplicate key (5 three times)
    frame.loc[[10, 11, 12], "email"] = None
    frame.loc[[20, 21], "email"] = ["not-an-email", "x@y"]
    frame.loc[[30, 31], "status"] = ["lost", "PLACED"]
    frame.loc[[40, 41, 42], "amount"] = [-1.0, 5000.0, 1000.5]
    frame.loc[50, "country"] = None
    frame.loc[60, "email"] = frame.loc[61, "email"]
    frame["updated_at"] = frame["updated_at"].astype("datetime64[us]")
    return frame


CONTRACT = """\
apiVersion: v3.0.2
kind: DataContract
id: __ID__
name: Orders on __ENGINE__
version: 1.0.0
status: active
dataProduct: orders-__ENGINE__
domain: commerce
servers:
__SERVER__
schema:
  - name: orders
    physicalName: __TABLE__
    properties:
      - name: order_id
        logicalType: integer
        primaryKey: true
      - name: email
        logicalType: string
        classification: restricted
        customProperties:
          - property: pii
            value: true
        logicalTypeOptions:
          pattern: "^[^@ ]+@[^@ ]+[.][a-z]+$"
        quality:
          - type: library
            metric: nullValues
            mustBeLessThan: 1
            unit: percent
      - name: status
        logicalType: string
        required: true
        quality:
          - type: library
            metric: invalidValues
            arguments:
              validValues: [placed, shipped, delivered]
            mustBe: 0
      - name: amount
        logicalType: number
        logicalTypeOptions:
          minimum: 0
          maximum: 1000
      - name: country
        logicalType: string
        required: true
        logicalTypeOptions:
          minLength: 2
          maxLength: 2
      - name: updated_at
        logicalType: timestamp
    quality:
      - type: library
        metric: rowCount
        mustBeGreaterThan: 100
      - type: library
        metric: duplicateValues
        arguments:
          properties: [email]
        mustBe: 0
      - type: sql
        name: amount_cap
        query: SELECT count(*) FROM ${table} WHERE amount > 1000
        mustBe: 0
slaProperties:
  - property: latency
    value: 1
    unit: d
    element: orders.updated_at
"""


def contract_text(engine: str, server_yaml: str, *, table: str = "orders") -> str:
    return (CONTRACT.replace("__ID__", f"orders.{engine}").replace("__ENGINE__", engine)
            .replace("__SERVER__", server_yaml).replace("__TABLE__", table))


def parquet_server(path: Path, *, spark: bool = False) -> str:
    text = f"  - server: files\n    type: local\n    format: parquet\n    path: {path}\n"
    if spark:
        text += "    customProperties:\n      - property: meshgov.engine\n        value: spark\n"
    return text


def postgres_server(cl: Cluster, *, name: str = "pg-test", port: int | None = None) -> str:
    return (f"  - server: {name}\n    type: postgres\n    host: {cl.host}\n    port: {port or cl.port}\n"
            f"    database: {DATABASE}\n    schema: public\n")


def load_postgres(cl: Cluster, frame: pd.DataFrame, table: str) -> None:
    """The same rows in a Postgres table, with the types DuckDB reads from the Parquet file."""
    types = {"int64": "bigint", "object": "text", "str": "text", "string": "text", "float64": "double precision",
             "datetime64[us]": "timestamp"}
    columns = ", ".join(f'"{c}" {types[str(t)]}' for c, t in frame.dtypes.items())
    with cl.connect() as con:
        con.execute(f'DROP TABLE IF EXISTS "{table}"')
        con.execute(f'CREATE TABLE "{table}" ({columns})')
        with con.cursor() as cur, cur.copy(f'COPY "{table}" FROM STDIN') as copy:
            for row in frame.itertuples(index=False):
                copy.write_row([None if pd.isna(v) else v for v in row])
        con.execute(f'GRANT SELECT ON "{table}" TO {CHECKER}')
