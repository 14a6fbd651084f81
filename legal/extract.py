"""Sandbox extracts: an anonymised Parquet copy of one dataset of a product, with a k-anonymity
report, its own catalog entry and contract, and lineage back to its source.

What happens to each column is decided from the catalog (the product's latest contract), in
this order:

1. identifiers -> keyed hash (legal.pseudonyms): primary keys, any column named like a
   primary key somewhere in the mesh (a join key such as user_id), or tagged `identifier`;
2. quasi-identifiers -> generalised: tagged `quasi-identifier`, or by name (birth date/age,
   gender, postcode, country, region, city). A birth date becomes an age band, a postcode its
   prefix, another date or timestamp its month; the rest stay as they are;
3. other personal data (pii in the catalog) -> dropped or masked by classification
   (POLICY.pii_by_classification: restricted/confidential are dropped);
4. other dates and timestamps -> their month (coarsened, not counted as quasi-identifiers);
5. columns the contract does not declare -> dropped (nobody classified them).

k-anonymity: every combination of quasi-identifier values present in the written rows is
shared by at least k rows. Rows in classes smaller than the minimum are suppressed while the
suppressed share stays within POLICY.max_suppressed_share; if k is still below the minimum,
the result is `failed` (one result model, kind `anonymisation`) and nothing is written.

Why one module past 400 lines: planning, k-anonymity, writing and registration are one
audited operation over the same column plans, and its safety is in their order (refuse
before anything is written); split, that order would span files.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import yaml

from catalog import access, audit, ingest, masking, openlineage
from catalog.locations import dataset_locations, refusal
from catalog.odcs import slug
from checks import compiler
from checks.result import CheckResult
from legal import pseudonyms

KIND = "anonymisation"
SANDBOX_DOMAIN = "Sandbox"
LINEAGE_NAMESPACE = "meshgov"
PRODUCER = "https://github.com/meshgov/meshgov/tree/main/legal/extract.py"


@dataclass(frozen=True)
class ExtractPolicy:
    k_min: int = 5
    max_suppressed_share: float = 0.05
    age_band_years: int = 10
    postcode_prefix: int = 2
    pii_by_classification: dict[str, str] = field(default_factory=lambda: {
        "restricted": "drop", "confidential": "drop", "sensitive": "drop", "secret": "drop",
        "internal": "mask", "public": "mask"})
    unclassified_pii: str = "drop"


POLICY = ExtractPolicy()

_QI_NAMES = {
    "birth": re.compile(r"(birth|dob|date_of_birth|birthday)"),
    "postcode": re.compile(r"(postcode|post_code|postal|zip)"),
    "age": re.compile(r"^(age|age_band|age_group)$"),
    "place": re.compile(r"^(country|country_code|region|state|city|municipality)$"),
    "gender": re.compile(r"^(gender|sex)$"),
}
_DATE_TYPES = ("DATE", "TIMESTAMP")


class ExtractError(ValueError):
    """An extract that cannot be made; the message names the product, dataset or path."""


@dataclass
class ColumnPlan:
    source: str
    output: str | None
    treatment: str           # hash | generalise | drop | mask | month | keep
    expression: str | None   # SQL over the source relation, or None for dropped / masked-later
    quasi_identifier: bool = False
    logical_type: str | None = None
    note: str = ""


@dataclass
class ExtractReport:
    out: str
    rows: int
    k: int | None
    k_min: int
    quasi_identifiers: list[str]
    dropped: list[str]
    masked: list[str]
    hashed: list[str]
    generalised: dict[str, str]
    suppressed: int
    source_rows: int
    product_id: str
    dataset: str
    extract_product_id: str | None
    result: CheckResult

    @property
    def status(self) -> str:
        return self.result.status

    def to_json(self) -> dict[str, Any]:
        return {"out": self.out, "rows": self.rows, "k": self.k, "quasi_identifiers": self.quasi_identifiers,
                "dropped": self.dropped, "masked": self.masked, "hashed": self.hashed,
                "k_min": self.k_min, "status": self.status, "suppressed": self.suppressed,
                "generalised": self.generalised, "product": self.product_id, "dataset": self.dataset,
                "extract_product": self.extract_product_id, "reason": self.result.reason}


# --- k-anonymity ---------------------------------------------------------------------------

def k_anonymity(con: duckdb.DuckDBPyConnection, relation: str, quasi_identifiers: list[str]) -> int | None:
    """The smallest number of rows sharing one combination of quasi-identifier values (NULL
    counts as a value); the row count when there are no quasi-identifiers; None for no rows."""
    if not quasi_identifiers:
        n = con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]  # noqa: S608
        return n or None
    cols = ", ".join(compiler.quote_ident(c) for c in quasi_identifiers)
    return con.execute(f"SELECT min(n) FROM (SELECT count(*) AS n FROM {relation} GROUP BY {cols})").fetchone()[0]  # noqa: S608


def _suppress(con, table: str, quasi_identifiers: list[str], k_min: int) -> int:
    """Delete the rows of classes smaller than k_min; returns how many were deleted."""
    if not quasi_identifiers:
        return 0
    cols = ", ".join(compiler.quote_ident(c) for c in quasi_identifiers)
    before = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608
    con.execute(f"""CREATE OR REPLACE TEMP TABLE {table} AS SELECT * EXCLUDE (_class_size) FROM (
                        SELECT *, count(*) OVER (PARTITION BY {cols}) AS _class_size FROM {table})
                    WHERE _class_size >= {int(k_min)}""")  # noqa: S608
    return before - con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608


# --- planning -------------------------------------------------------------------------------

def _qi_kind(name: str, tags: list[str]) -> str | None:
    low = name.lower()
    for kind, pattern in _QI_NAMES.items():
        if pattern.search(low):
            return kind
    if any(t.lower() in ("quasi-identifier", "quasi_identifier", "qi") for t in tags):
        return "tagged"
    return None


def plan_columns(columns: list[dict[str, Any]], file_types: dict[str, str], join_keys: set[str], *,
                 policy: ExtractPolicy, extracted_on: dt.date) -> list[ColumnPlan]:
    """One plan per column of the file (see the module docstring for the order of rules)."""
    declared = {}
    for c in columns:
        for name in (c.get("physical_name"), c["column_name"]):
            if name:
                declared.setdefault(name, c)
    plans: list[ColumnPlan] = []
    used: set[str] = set(file_types)
    for name, duck_type in file_types.items():
        q = compiler.quote_ident(name)
        meta = declared.get(name)
        if meta is None:
            plans.append(ColumnPlan(name, None, "drop", None, note="not declared in the contract"))
            continue
        raw_tags = meta.get("tags")
        tags = [str(t) for t in raw_tags] if raw_tags is not None else []
        logical = meta.get("logical_type")
        is_date = duck_type.upper().startswith(_DATE_TYPES)
        if meta.get("primary_key") or name in join_keys or "identifier" in [t.lower() for t in tags]:
            plans.append(ColumnPlan(name, name, "hash", pseudonyms.pseudonym_sql(q), logical_type="string"))
            continue
        qi = _qi_kind(name, tags)
        if qi == "birth" and is_date:
            out = "age_band" if "age_band" not in used else f"{name}_age_band"
            used.add(out)
            width = int(policy.age_band_years)
            age = f"date_part('year', age(DATE '{extracted_on.isoformat()}', CAST({q} AS DATE)))"
            band = f"CAST(({age} // {width}) * {width} AS BIGINT)"
            expr = f"CAST({band} AS VARCHAR) || '-' || CAST({band} + {width - 1} AS VARCHAR)"
            plans.append(ColumnPlan(name, out, "generalise", expr, True, "string", f"age band of {width} years"))
        elif qi == "postcode":
            n = int(policy.postcode_prefix)
            plans.append(ColumnPlan(name, name, "generalise", f"left(CAST({q} AS VARCHAR), {n})", True, "string",
                                    f"first {n} characters"))
        elif qi and is_date:
            plans.append(ColumnPlan(name, name, "generalise", f"CAST(date_trunc('month', {q}) AS DATE)", True,
                                    "date", "month"))
        elif qi:
            plans.append(ColumnPlan(name, name, "keep", q, True, logical))
        elif meta.get("pii"):
            classification = (meta.get("classification") or "").lower()
            action = policy.pii_by_classification.get(classification, policy.unclassified_pii)
            if action == "mask":
                plans.append(ColumnPlan(name, name, "mask", q, logical_type="string",
                                        note=f"personal data classified {classification or 'not at all'}"))
            else:
                plans.append(ColumnPlan(name, None, "drop", None,
                                        note=f"personal data classified {classification or 'not at all'}"))
        elif is_date:
            plans.append(ColumnPlan(name, name, "month", f"CAST(date_trunc('month', {q}) AS DATE)",
                                    logical_type="date", note="month"))
        else:
            plans.append(ColumnPlan(name, name, "keep", q, logical_type=logical))
    return plans


# --- the extract ----------------------------------------------------------------------------

def _source(con: duckdb.DuckDBPyConnection, product_id: str, dataset: str | None):
    row = con.execute("SELECT contract_id, version FROM contracts WHERE product_id = ? "
                      "ORDER BY ingested_at DESC, revision DESC LIMIT 1", [product_id]).fetchone()
    if row is None:
        raise ExtractError(f"no product {product_id!r} in the catalog (no contract ingested)")
    contract_id, version = row
    locations = dataset_locations(con, contract_id)
    if dataset is None:
        if len(locations) != 1:
            raise ExtractError(f"{product_id} has {len(locations)} datasets ({', '.join(sorted(locations)) or 'none'}): "
                               "name one with --dataset")
        dataset = next(iter(locations))
    if dataset not in locations:
        raise ExtractError(f"{product_id} has no dataset {dataset!r} (datasets: {', '.join(sorted(locations))})")
    location = locations[dataset]
    if location is None:
        raise ExtractError(f"{product_id}.{dataset} has no local server in its contract: no data to extract")
    if location.refused:
        raise ExtractError(location.refused)
    if location.kind != "duckdb" and not Path(location.path).is_file():
        raise ExtractError(f"data file {location.path} of {product_id}.{dataset} does not exist")
    columns = con.execute("""SELECT column_name, physical_name, logical_type, classification, pii, primary_key,
                                    tags FROM columns WHERE contract_id = ? AND dataset = ? ORDER BY position""",
                          [contract_id, dataset]).df().to_dict("records")
    join_keys = {r[0] for r in con.execute("SELECT DISTINCT column_name FROM columns WHERE primary_key").fetchall()}
    return contract_id, version, dataset, location, columns, join_keys


def check_out_path(out: str | Path) -> Path:
    path = Path(out).expanduser().resolve()
    if path.suffix.lower() != ".parquet":
        raise ExtractError(f"--out {out}: an extract is a Parquet file; name it *.parquet")
    why = refusal(str(path))
    if why:
        raise ExtractError(f"--out {out}: {why}")
    if path.is_dir():
        raise ExtractError(f"--out {out} is a folder; name a file")
    return path


def make_extract(con: duckdb.DuckDBPyConnection, *, product_id: str, out: str | Path, user: access.User,
                 dataset: str | None = None, k_min: int | None = None, policy: ExtractPolicy = POLICY,
                 register: bool = True, now: dt.datetime | None = None) -> ExtractReport:
    """Write the anonymised extract of `product_id` (one dataset) to `out`, register it in the
    catalog with lineage to its source, audit it; a failed k-anonymity writes nothing."""
    access.require(user, "make_extract", target=product_id)
    path = check_out_path(out)
    k_min = int(policy.k_min if k_min is None else k_min)
    if k_min < 1:
        raise ExtractError(f"--k-min must be 1 or more, got {k_min}")
    now = now or compiler.now_utc()
    contract_id, version, dataset, location, columns, join_keys = _source(con, product_id, dataset)
    started = compiler.now_utc()
    setup, relation = compiler.relation_sql(location)
    with compiler.trusted_connection(threads=2) as work:
        for statement in setup:
            work.execute(statement)
        file_types = {r[0]: r[1] for r in work.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}  # noqa: S608
        plans = plan_columns(columns, file_types, join_keys, policy=policy, extracted_on=now.date())
        kept = [p for p in plans if p.expression is not None]
        if not kept:
            raise ExtractError(f"{product_id}.{dataset}: every column would be dropped; nothing to extract")
        select = ", ".join(f"{p.expression} AS {compiler.quote_ident(p.output)}" for p in kept)
        work.execute(f"CREATE TEMP TABLE extract AS SELECT {select} FROM {relation}",  # noqa: S608
                     pseudonyms.sql_params())
        source_rows = work.execute("SELECT count(*) FROM extract").fetchone()[0]
        quasi = [p.output for p in kept if p.quasi_identifier]
        k_before = k_anonymity(work, "extract", quasi)
        suppressed = 0
        if k_before is not None and k_before < k_min and quasi:
            small = work.execute(f"""SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n FROM extract
                                     GROUP BY {', '.join(compiler.quote_ident(c) for c in quasi)}) WHERE n < ?""",  # noqa: S608
                                 [k_min]).fetchone()[0]
            if source_rows and small / source_rows <= policy.max_suppressed_share:
                suppressed = _suppress(work, "extract", quasi, k_min)
        k = k_anonymity(work, "extract", quasi)
        rows = work.execute("SELECT count(*) FROM extract").fetchone()[0]
        masked_cols = [p.output for p in kept if p.treatment == "mask"]
        passed = k is not None and k >= k_min
        if passed:
            final = "SELECT * FROM extract"
            if masked_cols:
                # catalog.masking is the one masking rule; it runs in Python, on the masked columns only.
                work.execute("CREATE TEMP TABLE numbered AS SELECT row_number() OVER () AS _row, * FROM extract")
                frame = work.execute("SELECT _row, " + ", ".join(compiler.quote_ident(c) for c in masked_cols)
                                     + " FROM numbered").df()
                for column in masked_cols:
                    frame[column] = [masking.mask_value(v) for v in frame[column].tolist()]
                work.register("masked_columns", frame)
                replaced = ", ".join(f"m.{compiler.quote_ident(c)} AS {compiler.quote_ident(c)}" for c in masked_cols)
                final = (f"SELECT n.* EXCLUDE (_row) REPLACE ({replaced}) FROM numbered n "
                         "JOIN masked_columns m USING (_row) ORDER BY n._row")
            path.parent.mkdir(parents=True, exist_ok=True)
            work.execute(f"COPY ({final}) TO {compiler.sql_literal(str(path))} (FORMAT parquet, COMPRESSION zstd)")
            out_types = {r[0]: r[1] for r in work.execute(f"DESCRIBE {final}").fetchall()}
        else:
            out_types = {}

    generalised = {p.output: p.note for p in kept if p.treatment in ("generalise", "month")}
    if passed:
        reason = (f"k = {k} >= {k_min}: every combination of {', '.join(quasi) or '(no quasi-identifiers)'} "
                  f"is shared by at least {k} of {rows:,} rows" + (f"; {suppressed:,} rows in smaller classes "
                                                                   "suppressed" if suppressed else ""))
    elif k is None:
        reason = f"{product_id}.{dataset} has no rows: nothing to anonymise"
    else:
        reason = (f"k = {k} < {k_min}: some combination of {', '.join(quasi)} is shared by only {k} row(s); "
                  f"suppressing the small classes would remove more than {policy.max_suppressed_share:.0%} "
                  "of the rows. Nothing was written: generalise more or lower --k-min with a reason")
    result = CheckResult(
        check_id=f"extract:{product_id}/{dataset}/k_anonymity", kind=KIND, target=f"{product_id}.{dataset}",
        status="passed" if passed else "failed", reason=reason, measured=k, threshold=f">= {k_min}",
        product_id=product_id, dataset=dataset, contract_id=contract_id, contract_version=version,
        diagnostics={"quasi_identifiers": quasi, "k_before_suppression": k_before, "suppressed": suppressed,
                     "source_rows": source_rows, "rows": rows, "max_suppressed_share": policy.max_suppressed_share},
        started_at=started, finished_at=compiler.now_utc(), triggered_by=user.email)
    report = ExtractReport(
        out=str(path), rows=rows if passed else 0, k=k, k_min=k_min, quasi_identifiers=quasi,
        dropped=[p.source for p in plans if p.treatment == "drop"], masked=masked_cols,
        hashed=[p.output for p in kept if p.treatment == "hash"], generalised=generalised,
        suppressed=suppressed, source_rows=source_rows, product_id=product_id, dataset=dataset,
        extract_product_id=None, result=result)
    if passed and register:
        report.extract_product_id = _register(con, report, plans, out_types, location.path, contract_id,
                                              version, user, now)
    audit.record(con, actor=user, action="extract", target=f"product:{product_id}",
                 after={"dataset": dataset, "out": str(path), "status": result.status, "k": k, "k_min": k_min,
                        "rows": report.rows, "quasi_identifiers": quasi, "dropped": report.dropped,
                        "masked": report.masked, "hashed": report.hashed,
                        "extract_product": report.extract_product_id})
    return report


# --- registration: catalog entry, contract, lineage -----------------------------------------

_ODCS_TYPES = {"VARCHAR": "string", "DATE": "date", "BOOLEAN": "boolean", "DOUBLE": "number", "FLOAT": "number",
               "BIGINT": "integer", "INTEGER": "integer", "SMALLINT": "integer", "TINYINT": "integer",
               "HUGEINT": "integer", "UBIGINT": "integer", "UINTEGER": "integer"}


def _logical(duck_type: str) -> str:
    upper = duck_type.upper()
    if upper.startswith("DECIMAL"):
        return "number"
    if upper.startswith("TIMESTAMP"):
        return "timestamp"
    return _ODCS_TYPES.get(upper, "string")


def extract_product_id(product_id: str, dataset: str) -> str:
    return slug(f"{product_id} {dataset} sandbox")


def contract_document(report: ExtractReport, plans: list[ColumnPlan], out_types: dict[str, str], *,
                      source_contract: str, source_version: str | None, user: access.User,
                      now: dt.datetime) -> dict[str, Any]:
    pid = extract_product_id(report.product_id, report.dataset)
    by_output = {p.output: p for p in plans if p.output}
    properties = []
    for name, duck_type in out_types.items():
        p = by_output.get(name)
        how = {"hash": "keyed hash (pseudonym) of", "generalise": "generalised", "month": "month of",
               "mask": "masked", "keep": "copied from"}.get(p.treatment if p else "keep", "from")
        source = p.source if p else name
        properties.append({
            "name": name, "logicalType": _logical(duck_type), "physicalType": duck_type,
            "description": f"{how} {report.product_id}.{report.dataset}.{source}"
                           + (f" ({p.note})" if p and p.note else ""),
            "classification": "internal",
            "tags": [t for t in ("pseudonymised" if p and p.treatment == "hash" else None,
                                 "quasi-identifier" if p and p.quasi_identifier else None) if t],
        })
    return {
        "apiVersion": "v3.1.0", "kind": "DataContract", "id": f"sandbox.{pid}",
        "name": f"{report.product_id} {report.dataset} (anonymised sandbox extract)",
        "version": "1.0.0", "status": "active", "domain": SANDBOX_DOMAIN,
        "dataProduct": pid,
        "tags": ["sandbox", "anonymised", "extract"],
        "description": {
            "purpose": f"Anonymised copy of {report.product_id}.{report.dataset} for sandbox work.",
            "usage": "Sandbox analysis only. Pseudonyms join with other extracts of this meshgov.",
            "limitations": (f"k-anonymity k = {report.k} over {', '.join(report.quasi_identifiers) or 'no quasi-identifiers'}"
                            f" (minimum {report.k_min}); dropped: {', '.join(report.dropped) or 'none'}; "
                            f"masked: {', '.join(report.masked) or 'none'}."),
        },
        "servers": [{"server": "sandbox", "type": "local", "format": "parquet", "environment": "sandbox",
                     "path": report.out}],
        "team": {"name": "Sandbox extracts",
                 "members": [{"username": user.email, "name": user.name, "role": "Owner"}]},
        "schema": [{"name": report.dataset, "physicalName": Path(report.out).stem, "physicalType": "table",
                    "description": f"Anonymised extract of {report.product_id}.{report.dataset}",
                    "properties": properties}],
        "customProperties": [
            {"property": "meshgov.extract.source", "value": json.dumps({
                "product": report.product_id, "dataset": report.dataset, "contract": source_contract,
                "version": source_version})},
            {"property": "meshgov.extract.k", "value": str(report.k)},
            {"property": "meshgov.extract.kMin", "value": str(report.k_min)},
            {"property": "meshgov.extract.extractedAt", "value": now.isoformat(timespec="seconds") + "Z"},
            {"property": "meshgov.extract.extractedBy", "value": user.email},
        ],
    }


def _register(con, report: ExtractReport, plans: list[ColumnPlan], out_types: dict[str, str],
              source_path: str, source_contract: str, source_version: str | None, user: access.User,
              now: dt.datetime) -> str:
    """Contract next to the file, ingested like any contract, plus one OpenLineage event
    source file -> extract file. The catalog writes are made as the system (the user may hold
    make_extract without ingest); the audit row of the extract names the user."""
    document = contract_document(report, plans, out_types, source_contract=source_contract,
                                 source_version=source_version, user=user, now=now)
    text = "# Written by meshgov legal.extract; the anonymised extract's contract.\n" + \
        yaml.safe_dump(document, sort_keys=False, allow_unicode=True)
    contract_path = Path(report.out).with_suffix(".odcs.yaml")
    contract_path.write_text(text, encoding="utf-8")
    ingest.ingest_contract_text(con, text, source=str(contract_path), user=access.SYSTEM_USER)
    event = {
        "eventType": "COMPLETE", "eventTime": now.isoformat(timespec="milliseconds") + "Z",
        "run": {"runId": str(uuid.uuid4()), "facets": {}},
        "job": {"namespace": LINEAGE_NAMESPACE, "name": f"legal.extract.{report.product_id}.{report.dataset}",
                "facets": {}},
        "inputs": [{"namespace": "file", "name": source_path}],
        "outputs": [{"namespace": "file", "name": report.out}],
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }
    lineage = openlineage.ingest_text(con, json.dumps(event), source="legal.extract", actor=user.email)
    if lineage.rejected:
        raise ExtractError(f"the extract's lineage event was rejected: {lineage.rejected[0].reason}")
    return document["dataProduct"]
