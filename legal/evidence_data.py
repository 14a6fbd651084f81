"""What an evidence pack shows about one product, read as it stood at a point in time: the
contract in force and its owners and classifications, check results and their history,
consent coverage, bias audits, SLO compliance, the lineage around it and the audit-trail
excerpt. Plain frames and dicts; legal.evidence renders them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import Any

import pandas as pd

from catalog import audit_query, lineage, odcs, queries
from catalog.status import severity_sql
from checks import consent_reports, model_checks, slo

AUDIT_ROWS = 200


def _runs_until(at: dt.datetime) -> str:
    # Shadows the table for the queries that follow it: every definition of "latest results"
    # (catalog.queries, checks.consent) then sees only the runs finished by `at`.
    return ("WITH check_runs AS (SELECT * FROM main.check_runs WHERE started_at <= $at "
            "AND (finished_at IS NULL OR finished_at <= $at)) ")


def contract_in_force(con, product_id: str, at: dt.datetime) -> dict | None:
    row = con.execute("""
        SELECT contract_id, revision, version, status, api_version, validated_against, raw_yaml, content_hash,
               ingested_at, ingested_by, source_file
        FROM contracts WHERE product_id = ? AND ingested_at <= ?
        ORDER BY ingested_at DESC, revision DESC LIMIT 1""", [product_id, at]).fetchone()
    if row is None:
        return None
    keys = ["contract_id", "revision", "version", "status", "api_version", "validated_against", "raw_yaml",
            "content_hash", "ingested_at", "ingested_by", "source_file"]
    found = dict(zip(keys, row, strict=True))
    found["recomputed_hash"] = hashlib.sha256(found["raw_yaml"].encode()).hexdigest()
    found["history"] = con.execute("""
        SELECT revision, version, status, content_hash, ingested_at, ingested_by FROM contracts
        WHERE contract_id = ? AND ingested_at <= ? ORDER BY revision""", [found["contract_id"], at]).df()
    return found


def owners_and_columns(raw_yaml: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Owners and column classifications as the contract text in force states them."""
    try:
        document = odcs.load_yaml(raw_yaml)
    except Exception:  # noqa: BLE001 - a stored contract was validated once; say so rather than fail
        return pd.DataFrame(), pd.DataFrame()
    team = document.get("team") if isinstance(document, dict) else None
    members = team.get("members", []) if isinstance(team, dict) else (team if isinstance(team, list) else [])
    owners = pd.DataFrame([{"team": (team or {}).get("name") if isinstance(team, dict) else None,
                            "name": m.get("name"), "username": m.get("username"), "role": m.get("role")}
                           for m in members if isinstance(m, dict)])
    rows = []
    for obj in document.get("schema") or []:
        if not isinstance(obj, dict):
            continue
        for prop in obj.get("properties") or []:
            if isinstance(prop, dict):
                tags = prop.get("tags") or []
                rows.append({"dataset": obj.get("name"), "column": prop.get("name"),
                             "classification": prop.get("classification"),
                             "pii": odcs.is_pii(prop.get("classification"), tags, prop.get("customProperties")),
                             "tags": ", ".join(map(str, tags))})
    return owners, pd.DataFrame(rows)


def latest_results(con, product_id: str, at: dt.datetime) -> pd.DataFrame:
    return con.execute(_runs_until(at) + f"""
        SELECT status, kind, target, measured, threshold, reason, contract_version, run_id, finished_at
        FROM ({queries.LATEST_RESULTS_SQL}) WHERE product_id = $pid
        ORDER BY {severity_sql()} DESC, check_id""", {"at": at, "pid": product_id}).df()  # noqa: S608


def result_history(con, product_id: str, at: dt.datetime) -> pd.DataFrame:
    return con.execute("""
        SELECT r.run_id, r.started_at, cr.status, count(*) AS results
        FROM check_results cr JOIN check_runs r USING (run_id)
        WHERE cr.product_id = ? AND r.state = 'complete' AND r.started_at <= ?
          AND (r.finished_at IS NULL OR r.finished_at <= ?)
        GROUP BY ALL ORDER BY r.started_at""", [product_id, at, at]).df()


def consent_coverage(con, product_id: str, at: dt.datetime) -> pd.DataFrame:
    sql = _runs_until(at) + consent_reports.LATEST_CONSENT_SQL.format(latest=queries.LATEST_RESULTS_SQL)
    frame = con.execute(sql, {"at": at}).df()
    return frame[frame["product_id"] == product_id].reset_index(drop=True)


def consent_history(con, product_id: str, at: dt.datetime) -> pd.DataFrame:
    frame = consent_reports.coverage_history(con)
    return frame[(frame["product_id"] == product_id) & (frame["run_at"] <= at)].reset_index(drop=True)


def bias_audits(con, product_id: str, at: dt.datetime) -> list[dict[str, Any]]:
    """The latest stored bias audit (by `at`) of each model counted under this product."""
    models = con.execute("SELECT model_id, version FROM models WHERE product_id = ? ORDER BY model_id",
                         [product_id]).fetchall()
    found = []
    for model_id, version in models:
        history = model_checks.fairness_history(con, model_id)
        history = history[history["finished_at"] <= at]
        card = con.execute("SELECT revision, version, content_hash, ingested_at, missing FROM model_cards "
                           "WHERE model_id = ? AND ingested_at <= ? ORDER BY revision DESC LIMIT 1",
                           [model_id, at]).fetchone()
        item = {"model_id": model_id, "version": version, "card": card, "history": history, "latest": None}
        if not history.empty:
            last = history.iloc[-1].to_dict()
            last["diagnostics"] = json.loads(last["diagnostics"]) if last.get("diagnostics") else {}
            item["latest"] = last
        found.append(item)
    return found


def slo_compliance(con, product_id: str, at: dt.datetime) -> pd.DataFrame:
    table = slo.compliance(con, now=at)
    return table[table["product_id"] == product_id].reset_index(drop=True)


def lineage_snapshot(con, product_id: str) -> pd.DataFrame:
    graph = lineage.load_graph(con)
    node = f"product:{product_id}"
    if node not in graph.flow:
        return pd.DataFrame(columns=["direction", "hops", "node", "kind"])
    rows = []
    for direction in ("upstream", "downstream"):
        _sub, hops = lineage.product_neighbourhood(graph, node, direction=direction)
        for other, hop in sorted(hops.items(), key=lambda kv: (kv[1], kv[0])):
            if other == node or hop == 0:
                continue
            attrs = graph.flow.nodes[other] if other in graph.flow else {}
            rows.append({"direction": direction, "hops": hop, "node": attrs.get("name") or other,
                         "kind": attrs.get("kind"), "id": other})
    return pd.DataFrame(rows, columns=["direction", "hops", "node", "kind", "id"])


def audit_excerpt(con, product_id: str, at: dt.datetime) -> pd.DataFrame:
    return audit_query.query(con, target=product_id, until=at, limit=AUDIT_ROWS)
