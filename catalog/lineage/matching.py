"""Which catalog dataset an OpenLineage dataset is (by file path, server and names)."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

import duckdb

from catalog.locations import resolve as resolve_location


@dataclass
class LocationIndex:
    by_path: dict[str, str] = field(default_factory=dict)          # absolute file path -> node
    by_suffix: dict[str, str | None] = field(default_factory=dict)  # path suffix -> node (None: ambiguous)
    by_qualified: dict[str, list[tuple[str | None, str]]] = field(default_factory=dict)  # name -> (host, node)


def _location_index(con: duckdb.DuckDBPyConnection) -> LocationIndex:
    """Where every contract's datasets live, read in three queries (catalog.locations decides
    the rule; asking it contract by contract cost seconds at a few hundred contracts)."""
    index = LocationIndex()
    sources = dict(con.execute("SELECT contract_id, arg_max(source_file, revision) FROM contracts "
                               "WHERE contract_id IN (SELECT contract_id FROM servers) GROUP BY contract_id").fetchall())
    servers: dict[str, list[dict]] = {}
    for contract_id, details in con.execute("SELECT contract_id, details FROM servers").fetchall():
        servers.setdefault(contract_id, []).append(json.loads(details) if details else {})
    datasets: dict[str, list[tuple[str, str, str | None]]] = {}
    # Only the datasets of contracts with a server: no server locates the others (reading all
    # 100k datasets' rows to skip them took ~0.45 s at 100k products, where 8 contracts had one).
    for contract_id, pid, ds, physical in con.execute(
            "SELECT contract_id, product_id, dataset, physical_name FROM datasets "
            "WHERE contract_id IN (SELECT contract_id FROM servers) ORDER BY rowid").fetchall():  # scan order, as before
        datasets.setdefault(contract_id, []).append((pid, ds, physical))
    for contract_id, rows in datasets.items():
        for pid, ds, physical in rows:
            node = f"dataset:{pid}.{ds}"
            location = next((loc for server in servers.get(contract_id, [])
                             if (loc := resolve_location(server, ds, physical, len(rows),
                                                         sources.get(contract_id), confine=False))), None)
            if location is not None:
                _index_location(index, location, node)
            for server in servers.get(contract_id, []):
                _index_server(index, server, physical or ds, node)
    return index


def _index_location(index: LocationIndex, location, node: str) -> None:
    path = os.path.normpath(location.path)
    if location.table:  # a table in a DuckDB file
        for key in (f"{path}.{location.table}", f"{path}/{location.table}"):
            index.by_path[key] = node
        _add_qualified(index, None, [location.table, f"main.{location.table}"], node)
        return
    index.by_path[path] = node
    parts = path.strip("/").split("/")
    for k in range(1, len(parts) + 1):
        suffix = "/".join(parts[-k:])
        index.by_suffix[suffix] = node if index.by_suffix.get(suffix, node) == node else None


def _index_server(index: LocationIndex, server: dict, table: str, node: str) -> None:
    """Warehouse servers: `<namespace>/<name>` as OpenLineage names tables (host in the
    namespace, database.schema.table or project.dataset.table as the name)."""
    host = server.get("host") or server.get("account") or server.get("endpointUrl")
    names = [table] if "." in table else []
    for a, b in (("database", "schema"), ("project", "dataset"), ("catalog", "schema")):
        if server.get(a) and server.get(b):
            names.append(f"{server[a]}.{server[b]}.{table}")
        if server.get(b):
            names.append(f"{server[b]}.{table}")
    _add_qualified(index, host, names, node)
    location = server.get("location") or server.get("path")
    if isinstance(location, str) and "://" in location:
        uri = location.replace("{model}", table).rstrip("/")
        index.by_path[uri] = node
        index.by_path[f"{uri}/{table}"] = node


def _add_qualified(index: LocationIndex, host: str | None, names: list[str], node: str) -> None:
    for name in names:
        entry = index.by_qualified.setdefault(name.lower(), [])
        if (host, node) not in entry:
            entry.append((host, node))


def match_dataset(namespace: str, name: str, index: LocationIndex) -> str | None:
    """The catalog dataset node an OpenLineage (namespace, name) denotes, or None (external)."""
    file_like = namespace == "file" or namespace.startswith("file:")
    if file_like or name.startswith("/"):
        path = os.path.normpath(re.sub(r"^file:(//[^/]*)?", "", name))
        if path in index.by_path:
            return index.by_path[path]
        hit = index.by_suffix.get(path.strip("/"))
        if hit:
            return hit
        for known, node in index.by_path.items():  # a longer name ending with the file path
            if path.endswith(known):
                return node
    if "://" in namespace:
        joined = f"{namespace.rstrip('/')}/{name.lstrip('/')}"
        if joined.rstrip("/") in index.by_path:
            return index.by_path[joined.rstrip("/")]
    candidates = index.by_qualified.get(name.lower(), [])
    with_host = [node for host, node in candidates if host and host.lower() in namespace.lower()]
    if len(set(with_host)) == 1:
        return with_host[0]
    without_host = [node for host, node in candidates if not host]
    if len(set(without_host)) == 1 and not with_host:
        return without_host[0]
    return None
