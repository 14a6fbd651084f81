"""Where a contract's datasets live: the `servers` entry resolved to a local file.

Shared by the checks engine (what to scan) and lineage (which OpenLineage dataset is
which catalog dataset). Rules, first match wins, for servers of type local/duckdb:
- a `{model}` placeholder in `path` is replaced by the dataset's physicalName or name;
- a `path` naming a folder means `<folder>/<physicalName or name>.<format>`;
- a `path` naming one file belongs to the dataset when the contract has one dataset, or
  when the file's stem equals the dataset's physicalName or name;
- `type: duckdb` with `database` means the table `<physicalName or name>` in that file.
Relative paths are relative to the folder of the contract file they came from.

A contract is user input, so the file it names may be anything readable by meshgov. When
`MESHGOV_DATA_ROOTS` is set (folders separated by the OS path separator), only files under
those folders are read; without it, system folders (/etc, /proc, /sys, /dev, /boot, /root,
/var/log, /run) are refused. A refused location keeps its path and the reason, so checks
report it as an error instead of reading the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from catalog import servers as server_kinds


@dataclass(frozen=True)
class Location:
    kind: str          # parquet | csv | json | duckdb
    path: str          # absolute file path
    table: str | None  # table name inside a DuckDB file
    refused: str | None = None  # why meshgov will not read this file, when it will not
    # Where the checks run (catalog.servers): duckdb (in-process), postgres (path is then a
    # display address, params name the table) or spark (the file, read by Spark).
    engine: str = "duckdb"
    params: tuple[tuple[str, str], ...] = ()


_SYSTEM_DIRS = ("/etc", "/proc", "/sys", "/dev", "/boot", "/root", "/var/log", "/run")


def refusal(path: str) -> str | None:
    """Why a data file may not be read (None when it may)."""
    real = os.path.realpath(path)
    roots = [r for r in os.environ.get("MESHGOV_DATA_ROOTS", "").split(os.pathsep) if r]
    if roots:
        if any(real == os.path.realpath(r) or real.startswith(os.path.realpath(r).rstrip("/") + "/")
               for r in roots):
            return None
        return f"{path} is outside the allowed data roots (MESHGOV_DATA_ROOTS): not read"
    if any(real == d or real.startswith(d + "/") for d in _SYSTEM_DIRS):
        return f"{path} is in a system folder: meshgov does not read data there"
    return None


def _guarded(location: Location) -> Location:
    reason = refusal(location.path)
    return replace(location, refused=reason) if reason else location


def _base_dir(source_file: str | None) -> Path:
    return Path(source_file).resolve().parent if source_file else Path.cwd()


def resolve(server: dict, dataset: str, physical_name: str | None, n_datasets: int,
            source_file: str | None) -> Location | None:
    stem = physical_name or dataset
    base = _base_dir(source_file)
    stype = (server.get("type") or "").lower()
    if stype in server_kinds.POSTGRES_TYPES:
        params = server_kinds.postgres_params(server, stem)
        return Location("postgres", server_kinds.display_address(dict(params)), stem, engine="postgres",
                        params=params)
    if stype == "duckdb" and server.get("database"):
        return _guarded(Location("duckdb", str((base / server["database"]).resolve()), stem))
    if stype != "local" or not server.get("path"):
        return None
    fmt = (server.get("format") or "parquet").lower()
    raw = server["path"].replace("{model}", stem)
    path = (base / raw).resolve()
    if path.is_dir() or raw.endswith("/"):
        return _guarded(Location(fmt, str(path / f"{stem}.{fmt}"), None))
    if "{model}" in server["path"] or n_datasets == 1 or path.stem == stem:
        return _guarded(Location(fmt, str(path), None))
    return None


def dataset_locations(con: duckdb.DuckDBPyConnection, contract_id: str) -> dict[str, Location | None]:
    """Every dataset of the contract's latest revision -> its local location (or None)."""
    source = con.execute(
        "SELECT source_file FROM contracts WHERE contract_id = ? ORDER BY revision DESC LIMIT 1",
        [contract_id]).fetchone()
    source_file = source[0] if source else None
    servers = [json.loads(d) for (d,) in con.execute(
        "SELECT details FROM servers WHERE contract_id = ?", [contract_id]).fetchall()]
    datasets = con.execute(
        "SELECT dataset, physical_name FROM datasets WHERE contract_id = ?", [contract_id]).fetchall()
    found: dict[str, Location | None] = {}
    for dataset, physical in datasets:
        found[dataset] = next(
            (loc for server in servers
             if (loc := resolve(server, dataset, physical, len(datasets), source_file))), None)
    return _on_spark(con, contract_id, servers, found)


def _on_spark(con: duckdb.DuckDBPyConnection, contract_id: str, servers: list[dict],
              found: dict[str, Location | None]) -> dict[str, Location | None]:
    """File locations of a contract whose server (or the contract) says
    `meshgov.engine: spark` run on Spark (catalog.servers)."""
    marked = con.execute("SELECT value FROM contract_properties WHERE contract_id = ? AND property = ?",
                         [contract_id, server_kinds.ENGINE_PROPERTY]).fetchone()
    wanted = (marked[0] or "").strip().lower() == "spark" if marked else False
    wanted = wanted or any(server_kinds.custom_property(s, server_kinds.ENGINE_PROPERTY) == "spark"
                           for s in servers if (s.get("type") or "").lower() == "local")
    if not wanted:
        return found
    return {name: replace(loc, engine="spark") if loc and loc.kind in ("parquet", "csv", "json") else loc
            for name, loc in found.items()}
