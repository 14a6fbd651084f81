"""A second demo product whose data lives in PostgreSQL — only when one is configured.

Set `MESHGOV_DEMO_POSTGRES_URL=postgresql://user:password@host:port/dbname` before
`python -m catalog seed`: the seed copies the Commerce Orders rows into the table
`meshgov_demo.orders` there and ingests the product "Commerce Orders on PostgreSQL" whose
contract names a `postgres` server called `demo-postgres` (host, port, database, schema —
no credentials). The credentials go to the secrets file `<secrets dir>/demo-postgres.json`
(mode 600; catalog.servers), never into the contract or the catalog. Without the variable
nothing happens and the demo needs no server.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pyarrow as pa
import yaml

from catalog import servers
from catalog.ingest import ingest_paths
from sample_data import contracts, scenario

URL_VARIABLE = "MESHGOV_DEMO_POSTGRES_URL"
SERVER = "demo-postgres"
SCHEMA = "meshgov_demo"
_PG_TYPES = {"int64": "bigint", "int32": "integer", "int16": "smallint", "double": "double precision",
             "float": "real", "string": "text", "large_string": "text", "bool": "boolean", "date32[day]": "date"}


def _pg_type(arrow_type: pa.DataType) -> str:
    if pa.types.is_timestamp(arrow_type):
        return "timestamptz" if arrow_type.tz else "timestamp"
    if pa.types.is_decimal(arrow_type):
        return f"numeric({arrow_type.precision},{arrow_type.scale})"
    return _PG_TYPES.get(str(arrow_type), "text")


def seed_if_configured(con, out_dir: Path, tables: dict) -> str:
    """Load and ingest the Postgres demo product when MESHGOV_DEMO_POSTGRES_URL is set;
    returns a line for the seed summary ('' when not configured)."""
    url = os.environ.get(URL_VARIABLE)
    if not url:
        return ""
    import psycopg

    parts = urlsplit(url)
    host, port, dbname = parts.hostname or "localhost", parts.port or 5432, (parts.path or "/").lstrip("/") or "postgres"
    table: pa.Table = tables["commerce-orders"]["orders"]
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as pg:
            pg.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            columns = ", ".join(f'"{f.name}" {_pg_type(f.type)}' for f in table.schema)
            pg.execute(f"DROP TABLE IF EXISTS {SCHEMA}.orders")
            pg.execute(f"CREATE TABLE {SCHEMA}.orders ({columns})")
            with pg.cursor() as cur, cur.copy(f"COPY {SCHEMA}.orders FROM STDIN") as copy:
                for row in table.to_pylist():
                    copy.write_row(list(row.values()))
    except psycopg.Error as exc:
        # Say why without echoing the URL (it holds the password).
        return f"\nPostgres demo product not seeded: {host}:{port}/{dbname}: {str(exc).splitlines()[0][:200]}"
    folder = servers.secrets_dir()
    folder.mkdir(parents=True, exist_ok=True)
    secret = folder / f"{SERVER}.json"
    secret.touch(mode=0o600)
    secret.write_text(json.dumps({"user": unquote(parts.username or ""), "password": unquote(parts.password or "")}))
    doc = contracts.document(scenario.product("commerce-orders"))
    doc.update(id="commerce-orders-postgres", name="Commerce Orders on PostgreSQL",
               dataProduct="Commerce Orders on PostgreSQL",
               servers=[{"server": SERVER, "type": "postgres", "host": host, "port": port,
                         "database": dbname, "schema": SCHEMA, "environment": "demo"}])
    path = out_dir / "contracts" / "commerce" / "commerce-orders-postgres.odcs.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    report = ingest_paths(con, [path])
    if report.rejected:
        return f"\nPostgres demo contract rejected: {report.rejected[0].reason}"
    return f"\nPostgres demo product: {table.num_rows:,} orders in {SCHEMA}.orders on {host}:{port}/{dbname}"
