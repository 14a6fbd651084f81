"""Catalog policies as SQL: one file per policy, run in the sandbox over a catalog snapshot.

A policy file is a header of `-- key: value` lines, then ONE SELECT that returns the
violations, with columns `product_id`, `target` (e.g. product.dataset.column) and `reason`:

    -- id: column-has-classification
    -- title: Every column has a classification
    -- severity: failed                  (failed | warning: what a violation yields)
    -- description: Why the rule exists; continuation lines start with `--` and
    --   two or more spaces.
    -- applies_to: all                   (default all; see below)
    SELECT product_id, product_id || '.' || dataset || '.' || column_name AS target,
           'column has no classification' AS reason
    FROM columns WHERE classification IS NULL

`applies_to` picks the products that get a result (passed, or the severity when the SELECT
returns rows for them); violations of products outside it are ignored. It is a comma list of
`all`, `pii` (products with a column declared PII), `models` (products feeding a model: the
AI/ML domain, or product/dataset tags features/training), `domain:<domain_id>`,
`tag:<tag>`, or one `SELECT product_id ...` over the snapshot.

The snapshot the SQL sees (catalog tables copied into a locked sandbox, so a steward's policy
can touch neither files nor the store): domains, products, owners, contracts (every revision,
without raw_yaml, plus `is_latest`), servers, datasets, columns, slos, and three derived
tables computed here: contract_properties (contract-level customProperties of each latest
revision, parsed from the stored YAML outside the sandbox: the catalog keeps them in no
table), pii_products (product_id, pii_columns) and model_products (product_id, why).

The pack is `checks/policies/*.sql` plus every folder in `MESHGOV_POLICY_DIR` (os.pathsep
separated): stewards add files there; a file whose id matches a starter policy replaces it.

Over ~400 lines because a policy's whole life is here: its file format (documented above),
its scopes, the catalog snapshot it reads and how its violations become results; the
sandbox that runs it is checks.sandbox.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from catalog.locations import Location
from catalog.masking import is_null
from checks.result import CheckResult
from checks.sandbox import SandboxError, SandboxTimeout, SandboxViolation
from checks.sandbox_process import IsolatedSandbox, SandboxWorker

if TYPE_CHECKING:
    import pandas as pd

BUILTIN_DIR = Path(__file__).resolve().parent / "policies"
POLICY_DIR_ENV = "MESHGOV_POLICY_DIR"
HEADER_KEYS = ("id", "title", "severity", "description", "applies_to")
REQUIRED_KEYS = ("id", "title", "severity")
SEVERITIES = ("failed", "warning")
REQUIRED_COLUMNS = ("product_id", "target", "reason")
MAX_LISTED_VIOLATIONS = 50
# A policy's SELECT is fetched up to this many rows, so a steward's runaway result (a cross
# join returning millions of rows) cannot exhaust the process's memory in pandas.
MAX_FETCHED_VIOLATIONS = 10_000
# What one violation may put into a result: a policy's `target` and `reason` are the steward's
# text, stored with the result and shown on every page (a 20 MB reason was stored in full).
MAX_VIOLATION_TEXT = 500
MAX_REASON_CHARS = 2000
MODEL_DOMAINS = ("ai-ml", "ai", "ml", "machine-learning", "data-science")
MODEL_TAGS = ("features", "training", "training-data", "feature-store")

Severity = Literal["failed", "warning"]
_POLICY_ID = re.compile(r"[a-z0-9][a-z0-9._-]{0,79}")
_HEADER_LINE = re.compile(r"--\s?([A-Za-z_][\w-]*)\s*:\s*(.*)")
_SCOPE_ITEM = re.compile(r"(all|pii|models|domain:[\w.-]+|tag:[\w.-]+)", re.I)


class PolicyError(Exception):
    """A policy file that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Policy:
    id: str
    title: str
    severity: Severity
    sql: str
    description: str = ""
    applies_to: str = "all"
    path: Path | None = None
    problem: str | None = None  # set when the file could not be parsed: every run reports it

    @property
    def source(self) -> str:
        return str(self.path) if self.path else "(inline)"


# --- parsing --------------------------------------------------------------------------------

def parse_policy(path: Path | str) -> Policy:
    """Read one policy file; raise PolicyError naming the file and line of a bad header."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: cannot read the policy file: {exc}") from exc
    return parse_policy_text(text, source=path)


def parse_policy_text(text: str, *, source: Path | str | None = None) -> Policy:
    where = str(source) if source else "(inline policy)"
    header, sql = _split_header(text, where)
    missing = [key for key in REQUIRED_KEYS if key not in header]
    if missing:
        raise PolicyError(f"{where}: header lacks {', '.join(missing)} "
                          f"(expected '-- key: value' lines for {', '.join(REQUIRED_KEYS)})")
    policy_id, id_line = header["id"]
    if not _POLICY_ID.fullmatch(policy_id):
        raise PolicyError(f"{where}, line {id_line}: id {policy_id!r} must be lower-case letters, "
                          "digits, '.', '_' or '-'")
    severity, severity_line = header["severity"]
    if severity not in SEVERITIES:
        raise PolicyError(f"{where}, line {severity_line}: severity {severity!r} must be one of "
                          f"{', '.join(SEVERITIES)}")
    applies_to, scope_line = header.get("applies_to", ("all", 0))
    scope_problem = _scope_problem(applies_to)
    if scope_problem:
        raise PolicyError(f"{where}, line {scope_line}: applies_to {applies_to!r}: {scope_problem}")
    if not sql.strip():
        raise PolicyError(f"{where}: no SQL after the header (expected one SELECT returning "
                          f"{', '.join(REQUIRED_COLUMNS)})")
    return Policy(id=policy_id, title=header["title"][0], severity=severity,  # type: ignore[arg-type]
                  sql=sql.strip(), description=header.get("description", ("", 0))[0],
                  applies_to=applies_to, path=Path(source) if source else None)


def _split_header(text: str, where: str) -> tuple[dict[str, tuple[str, int]], str]:
    """Header keys -> (value, line number), and the SQL after the header."""
    header: dict[str, tuple[str, int]] = {}
    lines = text.splitlines()
    last_key: str | None = None
    body_start = len(lines)
    for number, raw in enumerate(lines, start=1):
        line = raw.strip()
        if not line:
            if header:  # a blank line ends the header; later comments belong to the SQL
                body_start = number
                break
            continue
        if not line.startswith("--"):
            body_start = number - 1
            break
        comment = line[2:]
        if not comment.strip():
            last_key = None
            continue
        continuation = re.match(r"\s{2,}\S", comment)
        if continuation and last_key:
            value, first_line = header[last_key]
            header[last_key] = (f"{value} {comment.strip()}".strip(), first_line)
            continue
        match = _HEADER_LINE.fullmatch(line)
        if not match:
            raise PolicyError(f"{where}, line {number}: expected '-- key: value' in the header, "
                              f"got {line!r}")
        key, value = match.group(1).lower().replace("-", "_"), match.group(2).strip()
        if key not in HEADER_KEYS:
            raise PolicyError(f"{where}, line {number}: unknown header key {key!r} "
                              f"(known: {', '.join(HEADER_KEYS)})")
        if key in header:
            raise PolicyError(f"{where}, line {number}: {key!r} given twice "
                              f"(first on line {header[key][1]})")
        header[key] = (value, number)
        last_key = key
    return header, "\n".join(lines[body_start:])


def _scope_problem(applies_to: str) -> str | None:
    if applies_to.lstrip().lower().startswith("select"):
        return None
    items = [item.strip() for item in applies_to.split(",")]
    bad = [item for item in items if not _SCOPE_ITEM.fullmatch(item)]
    if bad or not items:
        return (f"unknown scope {', '.join(bad) or '(empty)'}; use all, pii, models, "
                "domain:<id>, tag:<tag> (comma-separated) or one SELECT product_id ...")
    return None


def policy_dirs(folder: Path | str | None = None) -> list[Path]:
    if folder is not None:
        return [Path(folder)]
    extra = os.environ.get(POLICY_DIR_ENV, "")
    return [BUILTIN_DIR] + [Path(p) for p in extra.split(os.pathsep) if p.strip()]


def load_pack(folder: Path | str | None = None) -> list[Policy]:
    """Every policy of the pack, by id. A file that does not parse becomes a Policy with
    `problem` set (its id is the file stem), so a run reports it instead of crashing; a
    later folder's policy replaces an earlier one with the same id."""
    by_id: dict[str, Policy] = {}
    for directory in policy_dirs(folder):
        if not directory.is_dir():
            stem = directory.name or str(directory)
            by_id[stem] = _broken(stem, directory, f"{directory}: policy folder does not exist")
            continue
        seen_here: dict[str, Path] = {}
        for path in sorted(directory.glob("*.sql")):
            try:
                policy = parse_policy(path)
            except PolicyError as exc:
                by_id[path.stem] = _broken(path.stem, path, str(exc))
                continue
            if policy.id in seen_here:
                by_id[f"{policy.id}@{path.name}"] = _broken(
                    policy.id, path, f"{path}: id {policy.id!r} is already used by "
                    f"{seen_here[policy.id].name} in the same folder")
                continue
            seen_here[policy.id] = path
            by_id[policy.id] = policy
    return list(by_id.values())


def _broken(policy_id: str, path: Path, problem: str) -> Policy:
    return Policy(id=re.sub(r"[^a-z0-9._-]+", "-", policy_id.lower()) or "unnamed",
                  title=f"unreadable policy {path.name}", severity="failed", sql="",
                  path=path, problem=problem)


# --- the catalog snapshot ------------------------------------------------------------------------

_SNAPSHOT_QUERIES = {
    "domains": "SELECT * FROM domains",
    "products": "SELECT * FROM products",
    "owners": "SELECT * FROM owners",
    "contracts": ("SELECT * EXCLUDE (raw_yaml), revision = max(revision) OVER "
                  "(PARTITION BY contract_id) AS is_latest FROM contracts"),
    "servers": "SELECT * FROM servers",
    "datasets": "SELECT * FROM datasets",
    "columns": "SELECT * FROM columns",
    "slos": "SELECT * FROM slos",
    "pii_products": ("SELECT product_id, list(dataset || '.' || column_name ORDER BY dataset, "
                     "position) AS pii_columns FROM columns WHERE pii GROUP BY product_id"),
}


def _model_products_sql() -> str:
    domains = ", ".join(f"'{d}'" for d in MODEL_DOMAINS)
    tags = "[" + ", ".join(f"'{t}'" for t in MODEL_TAGS) + "]"
    return f"""
        SELECT product_id, string_agg(DISTINCT why, '; ' ORDER BY why) AS why FROM (
            SELECT product_id, 'domain ' || domain_id AS why FROM products
            WHERE lower(domain_id) IN ({domains})
            UNION ALL
            SELECT product_id, 'tagged ' || t AS why
            FROM (SELECT product_id, unnest(tags) AS t FROM products)
            WHERE list_contains({tags}, lower(t))
            UNION ALL
            SELECT product_id, 'dataset ' || dataset || ' tagged ' || t AS why
            FROM (SELECT product_id, dataset, unnest(tags) AS t FROM datasets)
            WHERE list_contains({tags}, lower(t))
        ) GROUP BY product_id"""


@dataclass
class CatalogSnapshot:
    """The catalog tables policies may read, copied into a DuckDB file of a private temporary
    folder: the sandbox process copies each table from it (attached read-only, then detached,
    before the sandbox locks), so neither process needs pandas or pyarrow to move them.
    `close()` removes the folder."""

    tables: dict[str, Location]
    products: list[str]
    folder: str

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


_SNAPSHOT_ALIAS = "meshgov_policy_snapshot"


def catalog_snapshot(con: duckdb.DuckDBPyConnection) -> CatalogSnapshot:
    """The catalog tables policies may read (types kept, lists stay lists), as a CatalogSnapshot."""
    queries = {**_SNAPSHOT_QUERIES, "model_products": _model_products_sql(),
               "contract_properties": _CONTRACT_PROPERTIES_SQL}
    folder = tempfile.mkdtemp(prefix="meshgov-policy-snapshot-")
    path = os.path.join(folder, "catalog.duckdb")
    try:
        con.execute("SELECT 1").fetchall()  # complete a caller's unfinished result first
        con.execute(f"ATTACH '{path.replace(chr(39), chr(39) * 2)}' AS {_SNAPSHOT_ALIAS}")
        try:
            for name, sql in queries.items():
                con.execute(f'CREATE TABLE {_SNAPSHOT_ALIAS}."{name}" AS {sql}')
            products = sorted(r[0] for r in con.execute(
                f"SELECT product_id FROM {_SNAPSHOT_ALIAS}.products").fetchall())
        finally:
            con.execute(f"DETACH {_SNAPSHOT_ALIAS}")
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return CatalogSnapshot({name: Location("duckdb", path, name) for name in queries}, products, folder)


# Contract-level customProperties of each contract's latest revision (stored at ingest), as text.
_CONTRACT_PROPERTIES_SQL = ("SELECT contract_id::VARCHAR AS contract_id, product_id::VARCHAR AS product_id, "
                            "property::VARCHAR AS property, value::VARCHAR AS value FROM contract_properties")


def contract_properties(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Contract-level customProperties of each contract's latest revision (stored at ingest)."""
    return con.execute(_CONTRACT_PROPERTIES_SQL).df().astype(
        {"contract_id": "string", "product_id": "string", "property": "string", "value": "string"})


# --- running ----------------------------------------------------------------------------------------

@dataclass
class _Outcome:
    """One policy's run: violations (or an error) and when it ran."""
    violations: list[dict[str, Any]] | None = None
    columns: list[str] = field(default_factory=list)  # of the violations, as the SELECT named them
    scope: list[str] = field(default_factory=list)
    error: str | None = None
    started: datetime | None = None
    finished: datetime | None = None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def run_policies(con: duckdb.DuckDBPyConnection | None, *, product_ids: list[str] | None = None,
                 pack: list[Policy] | None = None, timeout_s: float = 30.0,
                 memory_limit: str = "1GB", snapshot: CatalogSnapshot | dict[str, Any] | None = None,
                 worker: SandboxWorker | None = None) -> list[CheckResult]:
    """Every policy of the pack over a sandboxed snapshot of the catalog: one result per
    (policy, product in scope). A policy that errs, times out or breaks the sandbox
    process's memory cap yields `error` results; the other policies still run.

    Pass `snapshot` (from catalog_snapshot) instead of `con` to run without the store open,
    and `worker` to share a run's sandbox process. A snapshot may also be a mapping of
    table name -> Arrow table or DataFrame (with a `products` table)."""
    pack = load_pack() if pack is None else pack
    started = _now()
    if snapshot is None:
        if con is None:
            raise TypeError("run_policies needs con= or snapshot=")
        try:
            snapshot = catalog_snapshot(con)
        except duckdb.Error as exc:
            return _engine_errors(pack, f"the catalog snapshot failed: {_why(exc)}", started)
        try:
            return _run_pack(pack, snapshot, product_ids, timeout_s, memory_limit, worker, started)
        finally:
            snapshot.close()
    return _run_pack(pack, snapshot, product_ids, timeout_s, memory_limit, worker, started)


def _run_pack(pack: list[Policy], snapshot: CatalogSnapshot | dict[str, Any], product_ids: list[str] | None,
              timeout_s: float, memory_limit: str, worker: SandboxWorker | None,
              started: datetime) -> list[CheckResult]:
    if isinstance(snapshot, CatalogSnapshot):
        tables: dict[str, Any] = snapshot.tables
        all_products = snapshot.products
    else:
        tables = snapshot
        products = snapshot["products"]
        all_products = sorted(products.column("product_id").to_pylist() if hasattr(products, "column")
                              else products["product_id"].tolist())
    chosen = set(product_ids or ())
    wanted = all_products if product_ids is None else [p for p in all_products if p in chosen]
    results: list[CheckResult] = []
    with IsolatedSandbox(worker, memory_limit=memory_limit, timeout_s=timeout_s) as box:
        try:
            for name, table in tables.items():
                box.load(name, table)
            box.lock()
        except SandboxError as exc:
            return _engine_errors(pack, f"the sandbox could not load the catalog: {_why(exc)}",
                                  started)
        for policy in pack:
            outcome = _run_one(box, policy, wanted)
            results += _policy_results(policy, outcome, whole_catalog=product_ids is None)
    return results


def _engine_errors(pack: list[Policy], reason: str, started: datetime) -> list[CheckResult]:
    """No policy could run: one catalog-level error per policy, so none vanishes."""
    outcome = _Outcome(started=started, finished=_now())
    return [_result(policy, None, "error", reason, None,
                    {"policy": policy.id, "title": policy.title, "file": policy.source}, outcome)
            for policy in pack]


def _run_one(box: IsolatedSandbox, policy: Policy, wanted: list[str]) -> _Outcome:
    outcome = _Outcome(started=_now())
    if policy.problem:
        outcome.error = f"the policy file cannot be used: {policy.problem}"
        outcome.scope = list(wanted)
    else:
        try:
            in_run = set(wanted)
            outcome.scope = [p for p in _scope(box, policy.applies_to) if p in in_run]
        except SandboxError as exc:
            outcome.scope = list(wanted)
            outcome.error = f"applies_to {policy.applies_to!r} could not be evaluated: {_why(exc)}"
        if outcome.error is None:
            outcome.columns, outcome.violations, outcome.error = _violations(box, policy)
    outcome.finished = _now()
    return outcome


def _scope(box: IsolatedSandbox, applies_to: str) -> list[str]:
    if applies_to.lstrip().lower().startswith("select"):
        answer = box.query_rows(applies_to, max_rows=1_000_000)
        if "product_id" not in answer.columns:
            raise SandboxError("the applies_to SELECT must return a product_id column")
        return sorted(_product_ids(answer.columns, answer.rows))
    found: set[str] = set()
    for item in (i.strip() for i in applies_to.split(",")):
        kind, _, arg = item.partition(":")
        kind = kind.lower()
        if kind == "all":
            sql, params = "SELECT product_id FROM products", None
        elif kind == "pii":
            sql, params = "SELECT product_id FROM pii_products", None
        elif kind == "models":
            sql, params = "SELECT product_id FROM model_products", None
        elif kind == "domain":
            sql, params = "SELECT product_id FROM products WHERE lower(domain_id) = lower(?)", [arg]
        else:  # tag
            sql = ("SELECT product_id FROM products WHERE list_contains(list_transform(tags, "
                   "lambda t: lower(t)), lower($tag)) UNION SELECT product_id FROM datasets WHERE "
                   "list_contains(list_transform(tags, lambda t: lower(t)), lower($tag))")
            params = {"tag": arg}
        answer = box.query_rows(sql, params)
        found |= _product_ids(answer.columns, answer.rows)
    return sorted(found)


def _product_ids(columns: list[str], rows: list[list]) -> set[str]:
    at = columns.index("product_id")
    return {str(row[at]) for row in rows if not is_null(row[at])}


def _violations(box: IsolatedSandbox, policy: Policy) -> tuple[list[str], list[dict[str, Any]] | None, str | None]:
    """(columns, violations as row dicts, error)"""
    try:
        answer = box.query_rows(policy.sql, max_rows=MAX_FETCHED_VIOLATIONS)
        columns, rows = answer.columns, answer.rows
    except SandboxTimeout as exc:
        return [], None, f"timed out: {exc}"
    except SandboxViolation as exc:
        return [], None, f"the sandbox refused the policy SQL: {exc}"
    except SandboxError as exc:
        return [], None, f"the policy SQL failed: {exc}"
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        return [], None, (f"the policy SQL must return columns {', '.join(REQUIRED_COLUMNS)}; "
                          f"it returned {', '.join(map(str, columns)) or 'no columns'} "
                          f"(missing {', '.join(missing)})")
    return columns, [dict(zip(columns, row, strict=True)) for row in rows], None


def _why(exc: Exception) -> str:
    return str(exc).strip() or type(exc).__name__


def _policy_results(policy: Policy, outcome: _Outcome, *, whole_catalog: bool) -> list[CheckResult]:
    base = {"policy": policy.id, "title": policy.title, "severity": policy.severity,
            "applies_to": policy.applies_to, "file": policy.source,
            "description": policy.description}
    if outcome.error is not None:
        if not outcome.scope:  # no product to attach it to: still never silent
            return [_result(policy, None, "error", outcome.error, None, base, outcome)]
        return [_result(policy, p, "error", outcome.error, None, base, outcome)
                for p in outcome.scope]
    violations = outcome.violations
    assert violations is not None
    by_product = _group_violations(violations, outcome.columns)
    results = []
    for product_id in outcome.scope:
        found = by_product.get(product_id, [])
        if not found:
            results.append(_result(policy, product_id, "passed", f"complies: {policy.title}", 0,
                                   {**base, "violations": []}, outcome))
            continue
        shown = found[:MAX_LISTED_VIOLATIONS]
        summary = "; ".join(f"{v['target']}: {v['reason']}" for v in shown[:3])
        more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
        count = f"at least {len(found)}" if len(violations) >= MAX_FETCHED_VIOLATIONS else str(len(found))
        reason = f"{policy.title} — {count} violation{'s' if len(found) != 1 else ''}: {summary}{more}"
        results.append(_result(policy, product_id, policy.severity, reason, len(found),
                               {**base, "violations": shown, "violations_total": len(found)},
                               outcome))
    # Violations without a product belong to no product's result: they are reported once,
    # and only by a run over the whole catalog (a run for one product must not show them).
    unattributed = by_product.get(None, [])
    if unattributed and whole_catalog:
        results.append(_result(
            policy, None, policy.severity,
            f"{policy.title} — {len(unattributed)} violation(s) without a product_id",
            len(unattributed), {**base, "violations": unattributed[:MAX_LISTED_VIOLATIONS],
                                "violations_total": len(unattributed)}, outcome))
    return results


def _group_violations(violations: list[dict[str, Any]], columns: list[str]) -> dict[str | None, list[dict[str, Any]]]:
    grouped: dict[str | None, list[dict[str, Any]]] = {}
    extra = [c for c in dict.fromkeys(columns) if c not in REQUIRED_COLUMNS]
    for row in violations:
        product = row.get("product_id")
        key = None if product is None or (isinstance(product, float) and math.isnan(product)) else str(product)
        entry = {"target": _clip(_plain(row.get("target"))), "reason": _clip(_plain(row.get("reason")))}
        entry.update({c: _clip(_plain(row.get(c))) for c in extra[:10]})
        grouped.setdefault(key, []).append(entry)
    return grouped


def _clip(value: Any, limit: int = MAX_VIOLATION_TEXT) -> Any:
    """A steward's text cut to `limit` characters, saying so."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"… (cut: {len(value):,} characters)"
    if isinstance(value, list) and len(json_text := str(value)) > limit:
        return json_text[:limit] + "… (cut)"
    return value


def _plain(value: Any) -> Any:
    """JSON-friendly cell values for diagnostics."""
    if value is None:
        return None
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, str | int | float | bool):
        return value
    return str(value)


def _result(policy: Policy, product_id: str | None, status: str, reason: str, measured: Any,
            diagnostics: dict[str, Any], outcome: _Outcome) -> CheckResult:
    return CheckResult(
        check_id=f"policy:{policy.id}:{product_id or 'catalog'}", kind="policy",
        target=product_id or "catalog", status=status,  # type: ignore[arg-type]
        reason=_clip(reason, MAX_REASON_CHARS), measured=measured, threshold=0 if measured is not None else None,
        product_id=product_id, diagnostics=diagnostics, sql=policy.sql or None,
        started_at=outcome.started, finished_at=outcome.finished)
