"""Consent: which users a personalised output may hold, checked against the consent records.

What is checked is declared in the contracts (ODCS `customProperties`), never hard-coded:

- the product that holds consent records declares
  `meshgov.consent.source: {dataset, userKey, purpose, decision, decidedAt, sourceSystem}`
  (or `true`, meaning a dataset with the columns user_id, purpose, decision, decided_at,
  source_system); `decision` is `granted` / `withdrawn` (or a boolean, true = granted);
- a personalised output declares `meshgov.consent.requires: [{dataset, purposes: [...],
  userKey, usedAt}]`: its rows are uses of the user `userKey` at the time `usedAt`, and each
  use needs a consent for every purpose that was valid at that time.

A use is valid when the user's latest decision for the purpose at or before the time of use
is a grant (an ASOF join in DuckDB). A failed result per output dataset and purpose counts
the users and uses without a valid consent, separating consents withdrawn before a later
use from consents never given, with a sample whose user keys are masked (catalog.masking).
Results use the one result model (kind `consent`); checks.runner runs them with the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from catalog import masking
from catalog.locations import Location, dataset_locations
from checks import compiler
from checks.result import CheckResult

KIND = "consent"
SOURCE_PROPERTY = "meshgov.consent.source"
REQUIRES_PROPERTY = "meshgov.consent.requires"
SOURCE_DEFAULTS = {"dataset": None, "userKey": "user_id", "purpose": "purpose", "decision": "decision",
                   "decidedAt": "decided_at", "sourceSystem": "source_system"}
GRANTED_WORDS = ("granted", "grant", "true", "yes", "opt_in", "opt-in", "opted_in", "given")
SAMPLE_ROWS = 10
NO_CONSENT = "no consent"
WITHDRAWN = "withdrawn before use"


class ConsentDeclarationError(ValueError):
    """A consent custom property that cannot be used; the message names contract, property and value."""


@dataclass
class ConsentSource:
    product_id: str
    contract_id: str
    dataset: str
    columns: dict[str, str]
    location: Location | None


@dataclass
class ConsentRequirement:
    product_id: str
    contract_id: str
    contract_version: str | None
    dataset: str
    purposes: list[str]
    user_key: str
    used_at: str
    location: Location | None = None
    pii_columns: list[str] = field(default_factory=list)


@dataclass
class ConsentPlan:
    """Everything the consent checks need from the store, read while it is open."""

    source: ConsentSource | None
    requirements: list[ConsentRequirement]
    problems: list[CheckResult]

    @property
    def steps(self) -> int:
        return sum(len(r.purposes) for r in self.requirements) + len(self.problems)


# --- declarations (from the store) ----------------------------------------------------------

_DECLARATIONS_SQL = """
    SELECT p.contract_id, p.product_id, p.property, p.value, c.version
    FROM contract_properties p
    JOIN (SELECT contract_id, version FROM contracts
          QUALIFY revision = max(revision) OVER (PARTITION BY contract_id)) c USING (contract_id)
    WHERE p.property IN (?, ?) ORDER BY p.product_id, p.contract_id"""


def _json_value(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text  # stored as a plain string


def _source(contract_id: str, product_id: str, value: Any, datasets: list[str]) -> tuple[str, dict[str, str]]:
    where = f"contract {contract_id}, customProperties {SOURCE_PROPERTY}"
    if value is True or (isinstance(value, str) and value.lower() == "true"):
        spec: dict[str, Any] = {}
    elif isinstance(value, dict):
        spec = value
    else:
        raise ConsentDeclarationError(f"{where}: value {value!r} must be true or a mapping "
                                      "(dataset, userKey, purpose, decision, decidedAt, sourceSystem)")
    unknown = sorted(set(spec) - set(SOURCE_DEFAULTS))
    if unknown:
        raise ConsentDeclarationError(f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
                                      f"known: {', '.join(SOURCE_DEFAULTS)}")
    columns = {k: str(spec.get(k) or v) for k, v in SOURCE_DEFAULTS.items() if k != "dataset"}
    dataset = spec.get("dataset") or (datasets[0] if len(datasets) == 1 else None)
    if not dataset or dataset not in datasets:
        raise ConsentDeclarationError(f"{where}: dataset {dataset!r} is not a dataset of {product_id} "
                                      f"(datasets: {', '.join(datasets) or 'none'})")
    return str(dataset), columns


def _requirements(contract_id: str, product_id: str, version: str | None, value: Any,
                  datasets: list[str]) -> list[ConsentRequirement]:
    where = f"contract {contract_id}, customProperties {REQUIRES_PROPERTY}"
    items = value if isinstance(value, list) else [value]
    found = []
    for position, item in enumerate(items):
        at = f"{where}[{position}]"
        if not isinstance(item, dict):
            raise ConsentDeclarationError(f"{at}: value {item!r} must be a mapping with dataset, purposes, "
                                          "userKey, usedAt")
        dataset = item.get("dataset") or (datasets[0] if len(datasets) == 1 else None)
        if not dataset or dataset not in datasets:
            raise ConsentDeclarationError(f"{at}: dataset {dataset!r} is not a dataset of {product_id} "
                                          f"(datasets: {', '.join(datasets) or 'none'})")
        purposes = item.get("purposes")
        purposes = [purposes] if isinstance(purposes, str) else purposes
        if not purposes or not all(isinstance(p, str) and p for p in purposes):
            raise ConsentDeclarationError(f"{at}: purposes {purposes!r} must be a non-empty list of names")
        used_at = item.get("usedAt")
        if not isinstance(used_at, str) or not used_at:
            raise ConsentDeclarationError(f"{at}: usedAt {used_at!r} must name the column holding the "
                                          "time of use")
        found.append(ConsentRequirement(product_id, contract_id, version, str(dataset), list(dict.fromkeys(purposes)),
                                        str(item.get("userKey") or "user_id"), used_at))
    return found


def _problem(product_id: str, contract_id: str, reason: str, *, status: str = "error") -> CheckResult:
    now = compiler.now_utc()
    return CheckResult(check_id=f"consent:{product_id}/declaration", kind=KIND, target=product_id,
                       status=status, reason=reason, product_id=product_id,  # type: ignore[arg-type]
                       contract_id=contract_id, started_at=now, finished_at=now)


def plan(con: duckdb.DuckDBPyConnection, product_ids: list[str] | None = None) -> ConsentPlan:
    """The consent source and the requirements of `product_ids` (None = all), with locations."""
    rows = con.execute(_DECLARATIONS_SQL, [SOURCE_PROPERTY, REQUIRES_PROPERTY]).fetchall()
    wanted = None if product_ids is None else set(product_ids)
    datasets: dict[str, list[str]] = {}
    for cid, ds in con.execute("SELECT contract_id, dataset FROM datasets ORDER BY contract_id, dataset").fetchall():
        datasets.setdefault(cid, []).append(ds)
    sources: list[ConsentSource] = []
    requirements: list[ConsentRequirement] = []
    problems: list[CheckResult] = []
    for cid, pid, prop, raw, version in rows:
        value = _json_value(raw)
        try:
            if prop == SOURCE_PROPERTY:
                dataset, columns = _source(cid, pid, value, datasets.get(cid, []))
                sources.append(ConsentSource(pid, cid, dataset, columns, dataset_locations(con, cid).get(dataset)))
            elif wanted is None or pid in wanted:
                requirements += _requirements(cid, pid, version, value, datasets.get(cid, []))
        except ConsentDeclarationError as exc:
            if wanted is None or pid in wanted:
                problems.append(_problem(pid, cid, str(exc)))
    source = sources[0] if sources else None
    if len(sources) > 1 and requirements:
        names = ", ".join(f"{s.product_id}.{s.dataset}" for s in sources)
        for req in requirements:
            problems.append(_problem(req.product_id, req.contract_id,
                                     f"{len(sources)} products declare {SOURCE_PROPERTY} ({names}): "
                                     "consent must have one source; keep the property on one contract"))
        requirements = []
    for req in requirements:
        req.location = dataset_locations(con, req.contract_id).get(req.dataset)
        req.pii_columns = masking.pii_columns(con, product_id=req.product_id, dataset=req.dataset)
    return ConsentPlan(source, requirements, problems)


# --- evaluation (on the data files) ---------------------------------------------------------


def _q(name: str) -> str:
    return compiler.quote_ident(name)


def _granted_expr(column: str) -> str:
    words = ", ".join(compiler.sql_literal(w) for w in GRANTED_WORDS)
    return f"lower(trim(CAST({_q(column)} AS VARCHAR))) IN ({words})"


def _load(con: duckdb.DuckDBPyConnection, location: Location | None, what: str) -> str:
    """Read a dataset into a temp table; raises ValueError saying why it cannot."""
    if location is None:
        raise ValueError(f"{what} has no local server in its contract: nothing to read")
    if location.refused:
        raise ValueError(location.refused)
    if location.kind != "duckdb" and not Path(location.path).is_file():
        raise ValueError(f"data file {location.path} of {what} does not exist")
    setup, relation = compiler.relation_sql(location)
    for statement in setup:
        con.execute(statement)
    return relation


def load_events(con: duckdb.DuckDBPyConnection, source: ConsentSource) -> None:
    """TEMP TABLE consent_events(user_key, purpose, granted, decided_at, source_system, was_granted)."""
    relation = _load(con, source.location, f"consent source {source.product_id}.{source.dataset}")
    c = source.columns
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE consent_events AS
        SELECT CAST({_q(c['userKey'])} AS VARCHAR) AS user_key, CAST({_q(c['purpose'])} AS VARCHAR) AS purpose,
               {_granted_expr(c['decision'])} AS granted,
               CAST({_q(c['decidedAt'])} AS TIMESTAMP) AS decided_at,
               CAST({_q(c['sourceSystem'])} AS VARCHAR) AS source_system,
               bool_or({_granted_expr(c['decision'])}) OVER (
                   PARTITION BY {_q(c['userKey'])}, {_q(c['purpose'])} ORDER BY {_q(c['decidedAt'])}
                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS was_granted
        FROM {relation}""")  # noqa: S608 - quoted identifiers, relation from relation_sql


def _uses_sql(req: ConsentRequirement, relation: str) -> str:
    """Each row of the output with its user key, time of use and a row number."""
    return f"""SELECT row_number() OVER () AS use_row, CAST({_q(req.user_key)} AS VARCHAR) AS consent_user,
                      CAST({_q(req.used_at)} AS TIMESTAMP) AS consent_used_at, *
               FROM {relation}"""  # noqa: S608


def judge_uses(con: duckdb.DuckDBPyConnection, purpose: str) -> str:
    """SQL over TEMP TABLEs `uses` and `consent_events`: every use with its verdict for `purpose`."""
    return f"""
        SELECT u.*, {compiler.sql_literal(purpose)} AS purpose, e.decided_at AS last_decision_at,
               e.source_system AS last_decision_source,
               coalesce(e.granted, false) AS valid,
               CASE WHEN coalesce(e.granted, false) THEN NULL
                    WHEN coalesce(e.was_granted, false) THEN {compiler.sql_literal(WITHDRAWN)}
                    ELSE {compiler.sql_literal(NO_CONSENT)} END AS reason
        FROM uses u ASOF LEFT JOIN (SELECT * FROM consent_events WHERE purpose = {compiler.sql_literal(purpose)}) e
          ON u.consent_user = e.user_key AND u.consent_used_at >= e.decided_at"""  # noqa: S608


_SUMMARY_SQL = """
    SELECT count(*) AS uses, count(DISTINCT consent_user) AS users,
           count(*) FILTER (WHERE NOT valid) AS violating_uses,
           count(DISTINCT consent_user) FILTER (WHERE NOT valid) AS violating_users,
           count(DISTINCT consent_user) FILTER (WHERE reason = ?) AS withdrawn_users,
           count(*) FILTER (WHERE reason = ?) AS withdrawn_uses,
           count(DISTINCT consent_user) FILTER (WHERE reason = ?) AS never_users,
           count(*) FILTER (WHERE consent_used_at IS NULL) AS undated_uses
    FROM judged"""

_TREND_SQL = """
    SELECT strftime(CAST(consent_used_at AS DATE), '%Y-%m-%d') AS day, count(DISTINCT consent_user) AS users,
           count(DISTINCT consent_user) FILTER (WHERE valid) AS consenting_users,
           count(*) FILTER (WHERE NOT valid) AS violating_uses
    FROM judged WHERE consent_used_at IS NOT NULL GROUP BY 1 ORDER BY 1"""


def evaluate(req: ConsentRequirement, source: ConsentSource | None, *, timeout_s: float = 30.0,
             salt: str | None = None, con: duckdb.DuckDBPyConnection | None = None) -> list[CheckResult]:
    """One result per purpose of `req`: failed when any use lacks a valid consent. With `con`,
    the consent records are already loaded there (load_events), so several outputs share them."""
    started = compiler.now_utc()
    target = f"{req.product_id}.{req.dataset}"

    def result(purpose: str, status: str, reason: str, measured=None, diagnostics=None, sql=None) -> CheckResult:
        return CheckResult(
            check_id=f"consent:{req.product_id}/{req.dataset}/{purpose}", kind=KIND, target=target,
            status=status, reason=reason, measured=compiler.json_safe(measured),  # type: ignore[arg-type]
            threshold="0 users without a valid consent at the time of use", product_id=req.product_id,
            dataset=req.dataset, column_name=req.user_key, diagnostics=compiler.json_safe(diagnostics or {}),
            sql=sql, contract_id=req.contract_id, contract_version=req.contract_version,
            started_at=started, finished_at=compiler.now_utc())

    if source is None:
        return [result(p, "error", f"{req.product_id} declares {REQUIRES_PROPERTY} but no contract declares "
                                   f"{SOURCE_PROPERTY}: there are no consent records to check against")
                for p in req.purposes]
    try:
        if con is None:
            with compiler.trusted_connection(threads=2) as own:
                load_events(own, source)
                return evaluate(req, source, timeout_s=timeout_s, salt=salt, con=own)
        uses_sql = prepare_uses(con, req)
        return [_judge_purpose(con, req, source, purpose, timeout_s, salt, result, uses_sql)
                for purpose in req.purposes]
    except (ValueError, duckdb.Error, compiler.QueryTimeout) as exc:
        return [result(p, "error", f"cannot check consent: {compiler._error_text(exc)}") for p in req.purposes]


def prepare_uses(con: duckdb.DuckDBPyConnection, req: ConsentRequirement) -> str:
    """Load the output dataset of `req` into `con` as the temp table `uses` (one row per use:
    user key, time of use); returns the SQL it was made from. ValueError names a missing column."""
    relation = _load(con, req.location, f"{req.product_id}.{req.dataset}")
    columns = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}  # noqa: S608
    missing = [c for c in (req.user_key, req.used_at) if c not in columns]
    if missing:
        raise ValueError(f"{req.product_id}.{req.dataset} has no column {', '.join(map(repr, missing))} "
                         f"(declared as userKey/usedAt in {REQUIRES_PROPERTY} of {req.contract_id})")
    uses = _uses_sql(req, relation)
    con.execute(f"CREATE OR REPLACE TEMP TABLE uses AS {uses}")
    return uses


def _judge_purpose(con, req: ConsentRequirement, source: ConsentSource, purpose: str, timeout_s: float,
                   salt: str | None, result, uses_sql: str) -> CheckResult:
    judged = judge_uses(con, purpose)
    compiler._run_query(con, f"CREATE OR REPLACE TEMP TABLE judged AS {judged}", timeout_s)
    summary = dict(zip(["uses", "users", "violating_uses", "violating_users", "withdrawn_users",
                        "withdrawn_uses", "never_users", "undated_uses"],
                       con.execute(_SUMMARY_SQL, [WITHDRAWN, WITHDRAWN, NO_CONSENT]).fetchone(), strict=True))
    trend = con.execute(_TREND_SQL).df()
    sample = con.execute(f"""
        SELECT consent_user AS user, consent_used_at AS used_at, reason, last_decision_at,
               last_decision_source FROM judged
        WHERE NOT valid ORDER BY consent_used_at DESC, consent_user LIMIT {SAMPLE_ROWS}""").df()  # noqa: S608
    # The user key names a person: stored samples keep it hashed (equal keys hash alike).
    sample["user"] = [masking.mask_value(v, style="hash", salt=salt) for v in sample["user"]]
    users = summary["users"] or 0
    coverage = (users - summary["violating_users"]) / users if users else None
    diagnostics = {
        **summary, "purpose": purpose, "coverage": coverage,
        "source": f"{source.product_id}.{source.dataset}", "user_key": req.user_key, "used_at": req.used_at,
        "sample": sample.to_dict("records"),
        "trend": trend.to_dict("records"),
    }
    sql = f"WITH uses AS ({uses_sql.strip()})\n{judged.strip()}"
    if users == 0:
        return result(purpose, "skipped", f"{req.product_id}.{req.dataset} is empty: no uses to check",
                      0, diagnostics, sql)
    if summary["violating_users"] == 0:
        return result(purpose, "passed", f"all {users:,} users had a valid '{purpose}' consent at each of "
                                         f"their {summary['uses']:,} uses", 0, diagnostics, sql)
    parts = []
    if summary["never_users"]:
        parts.append(f"{summary['never_users']:,} never consented")
    if summary["withdrawn_users"]:
        parts.append(f"{summary['withdrawn_users']:,} had withdrawn before a later use "
                     f"({summary['withdrawn_uses']:,} uses)")
    reason = (f"{summary['violating_users']:,} of {users:,} users in {req.product_id}.{req.dataset} had no "
              f"valid '{purpose}' consent at the time of use ({summary['violating_uses']:,} of "
              f"{summary['uses']:,} uses): {'; '.join(parts)}")
    return result(purpose, "failed", reason, summary["violating_users"], diagnostics, sql)


def run_plan(consent_plan: ConsentPlan, *, timeout_s: float = 30.0, step=None) -> list[CheckResult]:
    """Every consent result of the plan; `step(check_id, status)` reports progress."""
    found = list(consent_plan.problems)
    source = consent_plan.source
    if consent_plan.requirements and source is not None:
        with compiler.trusted_connection(threads=2) as con:
            try:
                load_events(con, source)
            except (ValueError, duckdb.Error) as exc:
                why = f"cannot read the consent records of {source.product_id}.{source.dataset}: " \
                      f"{compiler._error_text(exc)}"
                found += [_problem(r.product_id, r.contract_id, why) for r in consent_plan.requirements]
            else:
                for req in consent_plan.requirements:
                    found += evaluate(req, source, timeout_s=timeout_s, con=con)
    else:
        for req in consent_plan.requirements:
            found += evaluate(req, source, timeout_s=timeout_s)
    if step:
        for r in found:
            step(r.check_id, r.status)
    return found


def run(con: duckdb.DuckDBPyConnection, product_ids: list[str] | None = None, *,
        timeout_s: float = 30.0) -> list[CheckResult]:
    """Plan and evaluate in one go (tests, scripts); the runner splits the two around the store."""
    return run_plan(plan(con, product_ids), timeout_s=timeout_s)
