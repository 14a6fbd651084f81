"""Contract servers that are not local DuckDB work: PostgreSQL databases, and file servers a
contract marks to run on Spark. Their connection secrets come from here too.

- `type: postgres | postgresql` with host, port, database, schema: the dataset is the table
  `<schema>.<physicalName or name>` (schema `public` when not given).
- A `local` file server runs on Spark when the server, or the contract, carries the custom
  property `meshgov.engine: spark`; the file is still confined to the data roots.

Secrets never live in a contract, the catalog, logs or results. For a server named `pg-main`
meshgov reads, first hit wins per field:
1. `MESHGOV_SECRETS_DIR/pg-main.json` (default folder `data/secrets`), e.g.
   `{"user": "checker", "password": "..."}` — the file name is the server's name;
2. `MESHGOV_PG_PG_MAIN_USER` / `MESHGOV_PG_PG_MAIN_PASSWORD` (the name upper-cased, every
   other character `_`);
3. libpq's own `PGUSER` / `PGPASSWORD` / `PGPASSFILE` (psycopg reads them itself).
`MESHGOV_PG_HOST` / `MESHGOV_PG_PORT` override the contract's host and port (a contract
written for production, checked against a local copy).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from catalog.settings import data_dir

ENGINE_PROPERTY = "meshgov.engine"
POSTGRES_TYPES = ("postgres", "postgresql")


def secrets_dir() -> Path:
    return Path(os.environ.get("MESHGOV_SECRETS_DIR") or data_dir() / "secrets")


def _env_key(server: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", server.upper())


def credentials(server: str) -> dict[str, str]:
    """{"user": ..., "password": ...} for a server, with whatever is found (may be empty:
    libpq then falls back to PGUSER / PGPASSWORD / ~/.pgpass). Raises ValueError naming the
    file (never its content) when the secrets file is unreadable."""
    found: dict[str, str] = {}
    path = secrets_dir() / f"{server}.json"
    if re.fullmatch(r"[A-Za-z0-9_.-]+", server or "") and path.is_file():
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ValueError(f"secrets file {path} is not readable JSON ({type(exc).__name__})") from None
        if not isinstance(data, dict):
            raise ValueError(f"secrets file {path} must hold an object with user and password")
        found = {k: str(data[k]) for k in ("user", "password") if data.get(k) is not None}
    key = _env_key(server or "")
    for field in ("user", "password"):
        value = os.environ.get(f"MESHGOV_PG_{key}_{field.upper()}")
        if field not in found and value:
            found[field] = value
    return found


def custom_property(entry: dict, name: str) -> str | None:
    for prop in entry.get("customProperties") or []:
        if isinstance(prop, dict) and prop.get("property") == name and prop.get("value") is not None:
            return str(prop["value"]).strip().lower()
    return None


def postgres_params(server: dict, table: str) -> tuple[tuple[str, str], ...]:
    """Connection parameters without any secret: host, port, dbname, schema, table, server."""
    params = {
        "server": str(server.get("server") or "postgres"),
        "host": os.environ.get("MESHGOV_PG_HOST") or str(server.get("host") or "localhost"),
        "port": os.environ.get("MESHGOV_PG_PORT") or str(server.get("port") or 5432),
        "dbname": str(server.get("database") or "postgres"),
        "schema": str(server.get("schema") or server.get("schema_") or "public"),
        "table": table,
    }
    return tuple(params.items())


def display_address(params: dict) -> str:
    """How a Postgres dataset is named in results: no user, no password."""
    return (f"postgresql://{params['host']}:{params['port']}/{params['dbname']}"
            f"#{params['schema']}.{params['table']}")
