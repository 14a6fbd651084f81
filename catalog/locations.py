"""Where a contract's datasets live: the `servers` entry resolved to a local file.

Shared by the checks engine (what to scan) and lineage (which OpenLineage dataset is
which catalog dataset). Rules, first match wins, for servers of type local/duckdb:
- a `{model}` placeholder in `path` is replaced by the dataset's physicalName or name;
- a `path` naming a folder means `<folder>/<physicalName or name>.<format>`;
- a `path` naming one file belongs to the dataset when the contract has one dataset, or
  when the file's stem equals the dataset's physicalName or name;
- `type: duckdb` with `database` means the table `<physicalName or name>` in that file.
Relative paths are relative to the folder of the contract file they came from.

A contract is user input, so the file it names is confined (`refusal`): only files under
the data roots are read (`catalog.settings.data_roots`: `MESHGOV_DATA_ROOTS`, `[data] roots`
in the settings file, else the store's own folder, where `seed` writes). Whatever the
roots, these are refused: the meshgov store and its WAL (also through a hard link, and any
DuckDB table named like the store's audit/access/check tables), the
app's `.streamlit/` and `config/` folders, system folders, hidden files and folders below
a root, files named like secrets or keys, anything that is not a regular file (devices,
FIFOs, sockets, folders) and any path whose real path leaves the roots through a symlink.
A refused location keeps its path and the reason (naming contract, server and rule), so
checks and previews report it as an error without opening the file.
"""

from __future__ import annotations

import functools
import json
import os
import re
import stat
from dataclasses import dataclass, replace
from pathlib import Path

import duckdb

from catalog import servers as server_kinds
from catalog import settings


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
# Folders that hold the app's own secrets and settings, never data, wherever they are.
_APP_FOLDERS = {".streamlit", "config"}
# Parts of a file name that say "secret": matched against the name split at . _ - and spaces.
_SECRET_WORDS = {"secret", "secrets", "credential", "credentials", "password", "passwords", "passwd",
                 "shadow", "htpasswd", "apikey", "apikeys", "privkey", "keyfile", "keystore", "netrc",
                 "pgpass", "id_rsa", "id_dsa", "id_ecdsa", "id_ed25519"}
_SECRET_PAIRS = ({"api", "key"}, {"private", "key"}, {"access", "key"}, {"secret", "key"},
                 {"auth", "token"}, {"access", "token"})
_KEY_SUFFIXES = {".key", ".pem", ".p12", ".pfx", ".jks", ".keystore", ".kdbx", ".ppk", ".gpg", ".asc",
                 ".der", ".crt", ".cer", ".csr", ".ovpn", ".tfstate", ".env"}
# Tables only a meshgov store has (audit trail, role bindings, check history): a DuckDB file
# offering one is a copy of the store, wherever it lies. Generic names (products, owners...)
# are not listed: ordinary data may use them.
_STORE_ONLY_TABLES = {"audit_log", "role_bindings", "check_results", "check_runs", "lineage_events",
                      "lineage_quarantine", "search_docs", "search_terms", "search_vocab", "search_facets",
                      "contract_properties", "check_totals", "check_product_totals", "check_totals_runs"}
_NAME_WORDS = re.compile(r"[._\-\s]+")


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip("/") + "/")


def _secret_like(name: str) -> bool:
    lowered = name.lower()
    if os.path.splitext(lowered)[1] in _KEY_SUFFIXES or lowered.startswith(("id_rsa", "id_dsa", "id_ecdsa", "id_ed25519")):
        return True
    words = {w for w in _NAME_WORDS.split(lowered) if w}
    return bool(words & _SECRET_WORDS) or any(pair <= words for pair in _SECRET_PAIRS)


# Real paths of admin-controlled places (store, roots, app folders), resolved once: a
# catalog with thousands of datasets resolves them for every dataset.
_admin_real = functools.lru_cache(maxsize=256)(os.path.realpath)


def _store_ids(store: str | Path) -> tuple[set[str], set[tuple[int, int]]]:
    """The store file, its WAL and temp file: real paths and (device, inode) of those present."""
    real = _admin_real(str(store))
    paths = {real, real + ".wal", real + ".tmp"}
    ids = set()
    for candidate in paths:
        try:
            found = os.stat(candidate)
        except OSError:
            continue
        ids.add((found.st_dev, found.st_ino))
    return paths, ids


def _app_folders() -> tuple[str, ...]:
    return _app_folders_for(os.getcwd(), os.path.expanduser("~"))


@functools.lru_cache(maxsize=16)
def _app_folders_for(cwd: str, home: str) -> tuple[str, ...]:
    return (*(os.path.realpath(os.path.join(settings.PROJECT_ROOT, f)) for f in sorted(_APP_FOLDERS)),
            os.path.realpath(os.path.join(cwd, ".streamlit")), os.path.realpath(os.path.join(home, ".streamlit")))


def refusal(path: str, *, store: str | Path | None = None) -> str | None:
    """Why a data file may not be read (None when it may): `refused by rule <rule>: <why>`.

    `path` is the absolute path as the contract names it (symlinks not yet followed);
    `store` is the meshgov store in use (default: the configured one). Nothing is opened:
    the decision uses names, real paths and `stat`.
    """
    lexical = os.path.abspath(path)
    real = os.path.realpath(lexical)
    configured_store = str(settings.default_db_path())
    store_path = str(store) if store else configured_store
    try:
        found: os.stat_result | None = os.stat(real)
    except FileNotFoundError:
        found = None
    except OSError as exc:
        return f"{path} refused by rule 'unreadable': cannot inspect the file ({exc.strerror}); nothing was read"

    def rule(name: str, why: str) -> str:
        return f"{path} refused by rule '{name}': {why}; nothing was read"

    for candidate in {store_path, configured_store}:
        paths, ids = _store_ids(candidate)
        if real in paths or (found is not None and (found.st_dev, found.st_ino) in ids):
            return rule("meshgov store", "the catalog's own database (or its WAL) is never data")
    parts = set(lexical.split("/")) | set(real.split("/"))
    if ".streamlit" in parts or any(_within(p, a) for a in _app_folders() for p in (lexical, real)):
        return rule("app configuration", "files in .streamlit/ and config/ hold meshgov's settings and secrets")
    if any(_within(p, d) for d in _SYSTEM_DIRS for p in (lexical, real)):
        return rule("system folder", "meshgov does not read data in system folders")
    if _secret_like(os.path.basename(lexical)) or _secret_like(os.path.basename(real)):
        return rule("secret file name", "the file is named like a secret or key")
    try:
        roots, source = settings.data_roots(Path(store_path))
    except settings.SettingsError as exc:
        return rule("data roots", f"the data roots setting is invalid ({exc})")
    real_roots = [_admin_real(str(r)) for r in roots]
    inside = [r for r in real_roots if _within(real, r)]
    if not inside:
        if any(_within(lexical, r) for r in (*(os.path.abspath(r) for r in roots), *real_roots)):
            return rule("symlink leaves the data roots", f"its real path {real} is outside the data roots "
                        f"({source})")
        return rule("outside the data roots", f"only files under {', '.join(map(str, roots))} are read "
                    f"({source})")
    below = os.path.relpath(real, max(inside, key=len)).split("/")
    if any(part.startswith(".") and part not in (".", "..") for part in below):
        return rule("hidden file", "hidden files and folders are never data")
    if any(part in _APP_FOLDERS for part in below[:-1]):
        return rule("app configuration", "files in .streamlit/ and config/ folders are never data")
    if found is None:
        return None  # reported as "does not exist" by the reader, which opens nothing either
    mode = found.st_mode
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a device file" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket" if stat.S_ISSOCK(mode) else "a folder" if stat.S_ISDIR(mode) else "not a file")
        return rule("not a regular file", f"it is {kind}")
    return None


def _guarded(location: Location, lexical: str, *, server: dict, contract_id: str | None,
             store: str | Path | None) -> Location:
    reason = refusal(lexical, store=store)
    if not reason:
        return location
    name = server.get("server") or server.get("type") or "?"
    owner = f"contract {contract_id}, server {name}" if contract_id else f"server {name}"
    return replace(location, refused=f"{owner}: {reason}")


def _base_dir(source_file: str | None) -> Path:
    return Path(source_file).resolve().parent if source_file else Path.cwd()


def resolve(server: dict, dataset: str, physical_name: str | None, n_datasets: int,
            source_file: str | None, *, contract_id: str | None = None,
            store: str | Path | None = None, confine: bool = True) -> Location | None:
    """The dataset's file on this server (None when the server names none), with `refused`
    set when the confinement rules forbid reading it. `confine=False` is for callers that
    only match paths and never read (lineage), so they skip the per-file checks."""
    stem = physical_name or dataset
    base = _base_dir(source_file)
    stype = (server.get("type") or "").lower()

    def guarded(kind: str, lexical: str, table: str | None = None) -> Location:
        location = Location(kind, os.path.realpath(lexical), table)
        if not confine:
            return location
        return _guarded(location, lexical, server=server, contract_id=contract_id, store=store)

    if stype in server_kinds.POSTGRES_TYPES:
        params = server_kinds.postgres_params(server, stem)
        return Location("postgres", server_kinds.display_address(dict(params)), stem, engine="postgres",
                        params=params)

    if stype == "duckdb" and server.get("database"):
        location = guarded("duckdb", os.path.abspath(base / str(server["database"])), stem)
        if confine and not location.refused and stem.strip('"').lower() in _STORE_ONLY_TABLES:
            name = server.get("server") or "duckdb"
            owner = f"contract {contract_id}, server {name}" if contract_id else f"server {name}"
            location = replace(location, refused=(
                f"{owner}: table {stem} in {location.path} refused by rule 'meshgov store': it is "
                "named like meshgov's own audit, access or check tables (a copy of the store?); "
                "nothing was read"))
        return location
    if stype != "local" or not server.get("path"):
        return None
    fmt = (server.get("format") or "parquet").lower()
    raw = str(server["path"]).replace("{model}", stem)
    lexical = os.path.abspath(base / raw)
    if os.path.isdir(lexical) or raw.endswith("/"):
        return guarded(fmt, os.path.join(lexical, f"{stem}.{fmt}"))
    if "{model}" in str(server["path"]) or n_datasets == 1 or Path(lexical).stem == stem:
        return guarded(fmt, lexical)
    return None


def store_file(con: duckdb.DuckDBPyConnection) -> str | None:
    """The file behind this catalog connection (None for an in-memory catalog)."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return row[0] if row and row[0] else None


def dataset_locations(con: duckdb.DuckDBPyConnection, contract_id: str) -> dict[str, Location | None]:
    """Every dataset of the contract's latest revision -> its local location (or None)."""
    source = con.execute(
        "SELECT source_file FROM contracts WHERE contract_id = ? ORDER BY revision DESC LIMIT 1",
        [contract_id]).fetchone()
    servers = [json.loads(d) for (d,) in con.execute(
        "SELECT details FROM servers WHERE contract_id = ?", [contract_id]).fetchall()]
    datasets = con.execute(
        "SELECT dataset, physical_name FROM datasets WHERE contract_id = ?", [contract_id]).fetchall()
    marked = con.execute("SELECT value FROM contract_properties WHERE contract_id = ? AND property = ?",
                         [contract_id, server_kinds.ENGINE_PROPERTY]).fetchone()
    properties = {server_kinds.ENGINE_PROPERTY: marked[0]} if marked else {}
    return dataset_locations_from(contract_id, source[0] if source else None, servers, datasets,
                                  store_file(con), properties)


def dataset_locations_from(contract_id: str, source_file: str | None, servers: list[dict],
                           datasets: list[tuple[str, str | None]], store: str | None,
                           properties: dict[str, str]) -> dict[str, Location | None]:
    """dataset_locations from rows already read: the contract's servers (parsed `details`),
    its (dataset, physical_name) pairs, the store file and its contract-level properties (a
    run over many contracts reads them for all at once)."""
    found: dict[str, Location | None] = {}
    for dataset, physical in datasets:
        found[dataset] = next(
            (loc for server in servers
             if (loc := resolve(server, dataset, physical, len(datasets), source_file,
                                contract_id=contract_id, store=store))), None)
    return _on_spark(properties.get(server_kinds.ENGINE_PROPERTY), servers, found)


def _on_spark(marked: str | None, servers: list[dict],
              found: dict[str, Location | None]) -> dict[str, Location | None]:
    """File locations of a contract whose server (or the contract) says
    `meshgov.engine: spark` run on Spark (catalog.servers)."""
    wanted = (marked or "").strip().lower() == "spark"
    wanted = wanted or any(server_kinds.custom_property(s, server_kinds.ENGINE_PROPERTY) == "spark"
                           for s in servers if (s.get("type") or "").lower() == "local")
    if not wanted:
        return found
    return {name: replace(loc, engine="spark") if loc and loc.kind in ("parquet", "csv", "json") else loc
            for name, loc in found.items()}
