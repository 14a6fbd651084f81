"""Recommendation trace: for one user (and optionally one newsletter send), which segment and
model version, which features and source products, the consent state at the time of each use,
and whether each use was compliant.

Everything comes from declarations, not from product names:
- the uses are the rows of every output declaring `meshgov.consent.requires` (checks.consent),
  judged per purpose with the same ASOF rule as the consent check;
- the model outputs are the user's rows in the datasets of each model's output products
  (catalog `model_products`), the features the user's rows in its training products, and the
  source products its output product's upstream in the lineage graph.

The user key shown is the pseudonym (legal.pseudonyms); the raw key and personal data are
shown only to a role with `view_pii`, and then the view is audited (catalog.masking). Who may
trace: a role that may open the Consent page (the consent state of a person is on it).
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from catalog import access, audit, lineage, masking
from catalog.locations import Location, dataset_locations
from checks import compiler, consent, pii
from legal import pseudonyms

MAX_ROWS = 50


class TraceError(ValueError):
    """A trace that cannot be made (unknown user or send, no consent source); the message says why."""


@dataclass
class Use:
    product_id: str
    dataset: str
    row_key: str | None
    used_at: dt.datetime | None
    purpose: str
    valid: bool
    reason: str | None
    last_decision_at: dt.datetime | None
    last_decision_source: str | None


@dataclass
class Trace:
    pseudonym: str
    user_key: str | None                      # raw key: only with view_pii
    identity: list[dict[str, Any]]            # rows of PII-holding datasets, masked unless view_pii
    chain: dict[str, Any]                     # segment, model, version, features, lineage steps
    uses: list[Use]
    send: str | None
    revealed: bool
    notes: list[str] = field(default_factory=list)

    @property
    def compliant(self) -> bool:
        return all(u.valid for u in self.uses)

    @property
    def violations(self) -> list[Use]:
        return [u for u in self.uses if not u.valid]

    def to_json(self) -> dict[str, Any]:
        return compiler.json_safe({
            "user": self.pseudonym, "user_key": self.user_key, "revealed": self.revealed, "send": self.send,
            "compliant": self.compliant, "violations": len(self.violations),
            "segment": self.chain.get("segment"), "model": self.chain.get("model"),
            "model_version": self.chain.get("model_version"), "card_version": self.chain.get("card_version"),
            "assigned_in": self.chain.get("assigned_in"),
            "training_products": self.chain.get("training_products"),
            "source_products": self.chain.get("source_products"),
            "features": self.chain.get("features"), "lineage": self.chain.get("steps"),
            "identity": self.identity,
            "uses": [u.__dict__ for u in self.uses], "notes": self.notes})


def _read_rows(con, location: Location | None, key_column: str, user_key: str, what: str) -> pd.DataFrame:
    if location is None or location.refused:
        return pd.DataFrame()
    try:
        setup, relation = compiler.relation_sql(location)
        for statement in setup:
            con.execute(statement)
        columns = {r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()}  # noqa: S608
        if key_column not in columns:
            return pd.DataFrame()
        return con.execute(f"SELECT * FROM {relation} WHERE CAST({compiler.quote_ident(key_column)} AS VARCHAR) = ? "  # noqa: S608
                           f"LIMIT {MAX_ROWS}", [user_key]).df()
    except (duckdb.Error, ValueError) as exc:
        raise TraceError(f"cannot read {what}: {compiler._error_text(exc)}") from exc


def resolve_user(con: duckdb.DuckDBPyConnection, work: duckdb.DuckDBPyConnection, text: str,
                 source: consent.ConsentSource) -> str:
    """The raw user key for `text`: the key itself, or its pseudonym (`p:...`) looked up among
    the keys of the consent records (every person the mesh may use has a decision there)."""
    text = text.strip()
    if not text:
        raise TraceError("--user is empty: give a user key (e.g. u-00042) or its pseudonym (p:...)")
    if not text.startswith(pseudonyms.PREFIX):
        return text
    found = work.execute(f"SELECT DISTINCT user_key FROM consent_events WHERE {pseudonyms.pseudonym_sql('user_key')} = $p",
                         {**pseudonyms.sql_params(), "p": text}).fetchone()
    if found is None:
        raise TraceError(f"no user in the consent records of {source.product_id}.{source.dataset} has the "
                         f"pseudonym {text}")
    return found[0]


def trace(con: duckdb.DuckDBPyConnection, *, user_key: str, user: access.User, send: str | None = None,
          reveal: bool = True) -> Trace:
    """Trace one user; `reveal` asks for the raw key and personal data (granted only with view_pii)."""
    access.require_page(user, "consent")
    found = consent.plan(con)
    if found.source is None:
        raise TraceError(f"no contract declares {consent.SOURCE_PROPERTY}: there are no consent records to "
                         "trace against")
    revealed = bool(reveal and access.can(user, "view_pii"))
    with compiler.trusted_connection(threads=2) as work:
        try:
            consent.load_events(work, found.source)
        except (ValueError, duckdb.Error) as exc:
            raise TraceError(f"cannot read the consent records: {compiler._error_text(exc)}") from exc
        raw_key = resolve_user(con, work, user_key, found.source)
        known = work.execute("SELECT count(*) FROM consent_events WHERE user_key = ?", [raw_key]).fetchone()[0]
        uses, send_found = _uses(con, work, found, raw_key, send)
        outputs = sorted({f"dataset:{u.product_id}.{u.dataset}" for u in uses}) or [
            f"dataset:{pid}.{ds}" for pid, ds in con.execute(
                "SELECT DISTINCT d.product_id, d.dataset FROM datasets d JOIN model_products mp USING (product_id) "
                "WHERE mp.relation = 'output' ORDER BY 1, 2").fetchall()]
        chain = _chain(con, work, raw_key, outputs)
        identity = _identity(con, work, raw_key)
    if send and not send_found:
        raise TraceError(f"send {send!r} is not a use of this user in any output that declares "
                         f"{consent.REQUIRES_PROPERTY}")
    if not known and not uses and not chain["steps"]:
        raise TraceError("no such user in the consent records, the consent-checked outputs or their sources")
    pseudonym = pseudonyms.pseudonym(raw_key)
    notes = [] if known else ["the user has no decision in the consent records: every use lacks consent"]
    sensitive = masking.pii_columns(con)

    def protect(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [dict(item, rows=_protect(con, item["rows"], sensitive, raw_key, pseudonym, user, revealed,
                                         f"trace {pseudonym}: {item['product']}.{item['dataset']}"))
                for item in items]

    chain["steps"], chain["features"] = protect(chain["steps"]), protect(chain["features"])
    identity = protect(identity)
    audit.record(con, actor=user, action="trace", target=f"user:{pseudonym}",
                 after={"send": send, "revealed": revealed, "uses": len(uses),
                        "violations": sum(not u.valid for u in uses)})
    return Trace(pseudonym=pseudonym, user_key=raw_key if revealed else None, identity=identity, chain=chain,
                 uses=uses, send=send, revealed=revealed, notes=notes)


def _protect(con, frame: pd.DataFrame, sensitive: list[str], raw_key: str, pseudonym: str, user: access.User,
             revealed: bool, target: str) -> list[dict[str, Any]]:
    """Rows with the user key replaced by the pseudonym and PII masked, unless revealed (audited)."""
    if frame.empty:
        return []
    # Declared PII plus what the PII scanner finds in these few rows: a column the contract
    # forgot to classify (an e-mail column tagged internal) must not pass through unmasked.
    detected = [c for c in frame.columns if c not in sensitive
                and (frame[c].dtype == object or pd.api.types.is_string_dtype(frame[c]))
                and pii.detect(frame[c], str(c))]
    sensitive = [*sensitive, *detected]
    if revealed:
        shown = masking.mask_frame(frame, sensitive, user, con=con, target=target)
    else:
        shown = masking.mask_frame(frame, sensitive, user, target=target)  # no connection: masked
        shown = shown.map(lambda v: pseudonym if isinstance(v, str) and v == raw_key else v)
    return compiler.json_safe(shown.to_dict("records"))


def _uses(con, work, found: consent.ConsentPlan, raw_key: str, send: str | None) -> tuple[list[Use], bool]:
    uses: list[Use] = []
    send_found = False
    for req in found.requirements:
        try:
            consent.prepare_uses(work, req)
        except (ValueError, duckdb.Error):
            continue  # an unreadable output is the consent check's error to report, not the trace's
        keys = [r[0] for r in con.execute(
            "SELECT column_name FROM columns WHERE contract_id = ? AND dataset = ? AND primary_key "
            "ORDER BY position", [req.contract_id, req.dataset]).fetchall()]
        row_key = next((k for k in keys if k != req.user_key), None)
        work.execute("DELETE FROM uses WHERE consent_user IS DISTINCT FROM ?", [raw_key])
        if send is not None:
            if row_key is None:
                continue
            work.execute(f"DELETE FROM uses WHERE CAST({compiler.quote_ident(row_key)} AS VARCHAR) "  # noqa: S608
                         "IS DISTINCT FROM ?", [send])
            if not work.execute("SELECT count(*) FROM uses").fetchone()[0]:
                continue
            send_found = True
        for purpose in req.purposes:
            key_expr = f"CAST({compiler.quote_ident(row_key)} AS VARCHAR)" if row_key else "NULL"
            for r in work.execute(f"""SELECT {key_expr}, consent_used_at, valid, reason, last_decision_at,
                                             last_decision_source FROM ({consent.judge_uses(work, purpose)})
                                      ORDER BY consent_used_at DESC LIMIT {MAX_ROWS}""").fetchall():  # noqa: S608
                uses.append(Use(req.product_id, req.dataset, r[0], r[1], purpose, bool(r[2]), r[3], r[4], r[5]))
    return uses, send_found


def _catalog_datasets(con) -> dict[str, tuple[str, str, Location | None]]:
    """dataset node id -> (product, dataset, location), for every dataset of the catalog."""
    found = {}
    for contract_id, product_id in con.execute(
            "SELECT contract_id, product_id FROM contracts QUALIFY revision = max(revision) "
            "OVER (PARTITION BY contract_id)").fetchall():
        for dataset, location in dataset_locations(con, contract_id).items():
            found[f"dataset:{product_id}.{dataset}"] = (product_id, dataset, location)
    return found


def _chain(con, work, raw_key: str, outputs: list[str]) -> dict[str, Any]:
    """What the uses were built from: the user's rows in every catalog dataset upstream of the
    used outputs (lineage), the model that assigned the segment, and its features."""
    graph = lineage.load_graph(con)
    datasets = _catalog_datasets(con)
    hops: dict[str, int] = {}
    for node in outputs:
        if node in graph.flow:
            for other, h in lineage.neighbourhood(graph, node, direction="upstream").items():
                hops[other] = min(h, hops.get(other, h))
    steps = []
    for node in sorted((n for n in hops if n in datasets), key=lambda n: (hops[n], n)):
        product_id, dataset, location = datasets[node]
        rows = _read_rows(work, location, "user_id", raw_key, f"{product_id}.{dataset}")
        if not rows.empty:
            steps.append({"product": product_id, "dataset": dataset, "hops": hops[node], "rows": rows})
    models = {r[0]: {"model": r[0], "card_version": r[1], "product": r[2]} for r in con.execute(
        "SELECT model_id, version, product_id FROM models ORDER BY length(model_id) DESC").fetchall()}
    chain: dict[str, Any] = {"steps": steps, "segment": None, "model": None, "model_version": None,
                             "features": [], "training_products": [], "source_products": []}
    assigned = next((s for s in steps if "model_version" in s["rows"].columns), None)
    if assigned is not None:
        version = str(assigned["rows"]["model_version"].iloc[0])
        segment_col = next((c for c in assigned["rows"].columns if c.lower().startswith("segment")), None)
        model = next((m for m in models.values() if version == m["model"] or version.startswith(m["model"] + "-")),
                     None)
        chain.update(segment=str(assigned["rows"][segment_col].iloc[0]) if segment_col else None,
                     model_version=version, model=model["model"] if model else None,
                     card_version=model["card_version"] if model else None,
                     assigned_in=f"{assigned['product']}.{assigned['dataset']}")
        if model:
            chain["training_products"] = [r[0] for r in con.execute(
                "SELECT DISTINCT product_id FROM model_products WHERE model_id = ? AND relation = 'training' "
                "ORDER BY 1", [model["model"]]).fetchall()]
            predictions = {json.loads(p)["dataset"] for (p,) in con.execute(
                "SELECT predictions FROM models WHERE predictions IS NOT NULL").fetchall()}
            for _node, (pid, ds, location) in sorted(datasets.items()):
                if pid != assigned["product"] or ds == assigned["dataset"] or ds in predictions:
                    continue
                rows = _read_rows(work, location, "user_id", raw_key, f"{pid}.{ds}")
                if not rows.empty:
                    chain["features"].append({"product": pid, "dataset": ds, "rows": rows})
    chain["source_products"] = sorted({s["product"] for s in steps} | set(chain["training_products"]))
    return chain


def _identity(con, work, raw_key: str) -> list[dict[str, Any]]:
    """The user's rows in datasets that hold declared PII and a user_id column."""
    found = []
    for contract_id, product_id, dataset in con.execute(
            "SELECT DISTINCT contract_id, product_id, dataset FROM columns WHERE pii AND dataset IN ("
            "SELECT dataset FROM columns c2 WHERE c2.contract_id = columns.contract_id AND c2.primary_key "
            "AND c2.column_name = 'user_id') ORDER BY 2, 3").fetchall():
        location = dataset_locations(con, contract_id).get(dataset)
        rows = _read_rows(work, location, "user_id", raw_key, f"{product_id}.{dataset}")
        if not rows.empty:
            found.append({"product": product_id, "dataset": dataset, "rows": rows})
    return found


def render_text(t: Trace) -> str:
    c = t.chain
    lines = [f"user {t.pseudonym}" + (f" (key {t.user_key}, shown unmasked: audited)" if t.revealed else
                                       " (pseudonym; raw identity needs view_pii)")]
    if c.get("model_version"):
        lines.append(f"  segment {c.get('segment') or '-'} assigned by model {c.get('model') or '(not in the catalog)'} "
                     f"version {c['model_version']} (card {c.get('card_version') or '-'}) in {c.get('assigned_in')}")
    else:
        lines.append("  no model assignment found upstream of this user's uses")
    for f in c.get("features") or []:
        for row in f["rows"][:1]:
            lines.append(f"  features in {f['product']}.{f['dataset']}: " + ", ".join(f"{k}={v}" for k, v in row.items()))
    lines.append(f"  source products: {', '.join(c.get('source_products') or []) or '-'}"
                 + (f" (trained on {', '.join(c['training_products'])})" if c.get("training_products") else ""))
    for step in c.get("steps") or []:
        lines.append(f"  upstream {step['hops']:>2} hop(s): {step['product']}.{step['dataset']} ({len(step['rows'])} row(s))")
    if not t.uses:
        lines.append("  no use of this user in any consent-checked output")
    for u in t.uses:
        verdict = "compliant" if u.valid else f"VIOLATION ({u.reason})"
        when = u.used_at.isoformat(sep=" ", timespec="minutes") if u.used_at else "?"
        last = (f"last decision {u.last_decision_at:%Y-%m-%d %H:%M} via {u.last_decision_source}"
                if u.last_decision_at else "no decision before the use")
        lines.append(f"  {u.product_id}.{u.dataset} {u.row_key or ''} at {when} — {u.purpose}: {verdict}; {last}")
    lines.extend(f"  note: {n}" for n in t.notes)
    lines.append(f"compliant: {'yes' if t.compliant else f'NO — {len(t.violations)} use(s) without a valid consent'}")
    return "\n".join(lines)
