"""Weeks of generated history for the seed mesh, so trends, error budgets and score movement show.

Written into the store next to the scenario (`seed_history`):

- OpenLineage runs (one COMPLETE/FAIL event each, the start in nominalTime) of three of the
  pipeline's jobs, one per job and period for HISTORY_DAYS days, written to `lineage/history.ndjson` and ingested like users' files.
  The order loader fails every day since the last load 9 days ago (the stale commerce-orders,
  SCENARIO.md defect 1); the recommendation job failed for three days three weeks ago and
  recovered (a closed breach); the recommendation job overran two hours twice.
- One check run per day (`triggered_by` HISTORY_ACTOR, note saying it is generated), holding
  the results an SLO is computed from: freshness per SLA (the newest row's age as it was that
  day: commerce-orders' age grows past its 1 d SLA since the loads stopped), completeness
  (the required columns and null/row-count rules: the null spike of product-recommendations
  starts five days ago), and the consent checks of the newsletter sends, measured on the real
  sends and consent records up to that day (checks.consent), so the violation count grows
  with every campaign sent to non-consenting users.

Deterministic for an anchor hour: run ids derive from the anchor, so seeding twice in the
same hour adds nothing; nothing is deleted.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from catalog import check_totals
from catalog.ingest import IngestReport, ingest_paths
from catalog.store import retrying, transaction
from checks import consent as consent_checks
from checks.result import worst
from sample_data import scenario

HISTORY_DAYS = 35
HISTORY_ACTOR = "sample_data.history (generated)"
RUN_HOUR = 6                      # the daily check run, hours after midnight UTC
STALE_SINCE_DAYS = 9.125          # commerce-orders' newest row: anchor - 9 d 3 h
RECOMMENDATIONS_OUTAGE = (18, 20)  # days ago (inclusive) the recommendation job failed
NULL_SPIKE_SINCE_DAYS = 5
NAMESPACE = "meshgov-demo"
PRODUCER = "https://github.com/meshgov/meshgov/tree/main/sample_data/history.py"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
RUN_NAMESPACE = uuid.UUID("0b8f6c1e-52d4-4c55-9a7e-3f1d2b6a9e01")

# job -> (period in days, start hour, usual minutes). Only the jobs whose history tells part of
# the story: the lineage ingest costs a transaction per event, and the seed must stay fast.
JOBS = {
    "commerce.load_orders": (1, 2, 15),
    "recommendations.generate": (1, 7, 22),
    "newsletter.build_and_send": (7, 14, 50),
}
SLOW_RUNS = (11, 26)              # days ago the recommendation job ran 2 h 20 min


@dataclass
class HistoryReport:
    runs: int
    results: int
    lineage: IngestReport | None

    def note(self) -> str:
        accepted = len(self.lineage.accepted) if self.lineage else 0
        return (f"history: {self.runs} daily check runs ({self.results:,} results) and {accepted} lineage "
                f"records over {HISTORY_DAYS} days")


def _ts(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def lineage_events(anchor: datetime, days: int = HISTORY_DAYS) -> list[dict]:
    """One COMPLETE/FAIL event per job and period, oldest first, its start in the nominalTime
    run facet (the job's inputs and outputs come from the scenario's own events)."""
    midnight = anchor.replace(tzinfo=None, hour=0)
    events = []
    for day in range(days, 0, -1):
        for job, (period, hour, minutes) in JOBS.items():
            if day % period:
                continue
            start = midnight - timedelta(days=day) + timedelta(hours=hour)
            state, error = "COMPLETE", None
            if job == "commerce.load_orders" and day < STALE_SINCE_DAYS:
                state, error = "FAIL", "could not connect to shop.internal:5432: connection refused"
            if job == "recommendations.generate" and RECOMMENDATIONS_OUTAGE[0] <= day <= RECOMMENDATIONS_OUTAGE[1]:
                state, error = "FAIL", "segment_assignments not ready: upstream partition missing"
            took = 140 if job == "recommendations.generate" and day in SLOW_RUNS else minutes
            end = start + timedelta(minutes=took if state == "COMPLETE" else 4)
            run_id = str(uuid.uuid5(RUN_NAMESPACE, f"{job}@{start.isoformat()}"))
            facets = {"nominalTime": {
                "_producer": PRODUCER,
                "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/NominalTimeRunFacet.json"
                              "#/$defs/NominalTimeRunFacet",
                "nominalStartTime": _ts(start), "nominalEndTime": _ts(end)}}
            if error:
                facets["errorMessage"] = {
                    "_producer": PRODUCER,
                    "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json"
                                  "#/$defs/ErrorMessageRunFacet",
                    "message": error, "programmingLanguage": "python"}
            events.append({"eventType": state, "eventTime": _ts(end), "run": {"runId": run_id, "facets": facets},
                           "job": {"namespace": NAMESPACE, "name": job, "facets": {}}, "inputs": [], "outputs": [],
                           "producer": PRODUCER, "schemaURL": SCHEMA_URL})
    return events


def consent_sync_event(out: Path, anchor: datetime) -> dict:
    """The CRM consent sync's latest run, naming its input and both consent datasets, so the
    consent history (`consent_events`, added by sample_data.consent) takes part in lineage."""
    end = anchor.replace(tzinfo=None) - timedelta(minutes=20)
    data = (Path(out) / "data" / "customer-consent").resolve()
    return {"eventType": "COMPLETE", "eventTime": _ts(end),
            "run": {"runId": str(uuid.uuid5(RUN_NAMESPACE, f"customer.sync_consent@{end.isoformat()}")),
                    "facets": {}},
            "job": {"namespace": NAMESPACE, "name": "customer.sync_consent", "facets": {}},
            "inputs": [{"namespace": "postgres://crm.internal:5432", "name": "crm.public.consent_decisions"}],
            "outputs": [{"namespace": "file", "name": str(data / "consent.parquet")},
                        {"namespace": "file", "name": str(data / "consent_events.parquet")}],
            "producer": PRODUCER, "schemaURL": SCHEMA_URL}


def _run_times(anchor: datetime, days: int) -> list[tuple[int, datetime]]:
    midnight = anchor.replace(tzinfo=None, hour=0)
    return [(day, midnight - timedelta(days=day) + timedelta(hours=RUN_HOUR)) for day in range(days, 0, -1)]


def _age_days(product_id: str, dataset, day: int, rng: np.random.Generator) -> float:
    """The newest row's age at the day's check run."""
    if product_id == "commerce-orders":
        return STALE_SINCE_DAYS - day + RUN_HOUR / 24 if day < STALE_SINCE_DAYS else float(rng.uniform(0.1, 0.4))
    if product_id == "product-recommendations" and RECOMMENDATIONS_OUTAGE[0] <= day <= RECOMMENDATIONS_OUTAGE[1]:
        return float(day - RECOMMENDATIONS_OUTAGE[0] + 1.0 + rng.uniform(0.1, 0.3))
    if dataset.latency_days >= 7:
        return float((day + 5) % 7 + rng.uniform(0.05, 0.3))
    return float(rng.uniform(0.05, 0.6))


def _completeness_ids(product) -> list[tuple[str, str, str | None, bool]]:
    """(check_id, dataset, column, is_the_null_spike) of the product's completeness checks."""
    found = []
    for ds in product.datasets:
        for col in ds.columns:
            if col.required:
                found.append((f"{product.product_id}/{ds.name}/{col.name}/not_null", ds.name, col.name, False))
            for rule in col.quality:
                if rule.get("metric") in ("nullValues", "missingValues"):
                    found.append((f"{product.product_id}/{ds.name}/{col.name}/quality/{rule['id']}", ds.name,
                                  col.name, rule["id"] == "recommendations_product_sku_nulls"))
        for rule in ds.quality:
            if rule.get("metric") == "rowCount":
                found.append((f"{product.product_id}/{ds.name}/quality/{rule['id']}", ds.name, None, False))
    return found


def _consent_by_day(con: duckdb.DuckDBPyConnection, cuts: list[datetime]) -> pd.DataFrame:
    """For each cut time: the consent verdicts of the newsletter sends made up to then."""
    plan = consent_checks.plan(con, ["newsletter-sends"])
    req = next((r for r in plan.requirements if r.dataset == "sends"), None)
    if req is None or plan.source is None:
        return pd.DataFrame()
    frames = []
    with consent_checks.compiler.trusted_connection(threads=2) as duck:
        consent_checks.load_events(duck, plan.source)
        consent_checks.prepare_uses(duck, req)
        duck.register("cuts", pd.DataFrame({"cut": cuts}))
        for purpose in req.purposes:
            # Per user: when they were first used, and first used without consent (per reason);
            # a cut then only counts users, instead of re-judging every use per cut.
            frames.append(duck.execute(f"""
                WITH judged AS ({consent_checks.judge_uses(duck, purpose)}),
                per_user AS (
                    SELECT consent_user, min(consent_used_at) AS first_use,
                           min(consent_used_at) FILTER (WHERE NOT valid) AS first_bad,
                           min(consent_used_at) FILTER (WHERE reason = ?) AS first_withdrawn,
                           min(consent_used_at) FILTER (WHERE reason = ?) AS first_never
                    FROM judged GROUP BY consent_user),
                bad_uses AS (SELECT consent_used_at FROM judged WHERE NOT valid),
                uses AS (SELECT consent_used_at FROM judged)
                SELECT c.cut, '{purpose}' AS purpose,
                       (SELECT count(*) FROM uses WHERE consent_used_at <= c.cut) AS uses,
                       count(*) FILTER (WHERE u.first_use <= c.cut) AS users,
                       (SELECT count(*) FROM bad_uses WHERE consent_used_at <= c.cut) AS violating_uses,
                       count(*) FILTER (WHERE u.first_bad <= c.cut) AS violating_users,
                       count(*) FILTER (WHERE u.first_withdrawn <= c.cut) AS withdrawn_users,
                       count(*) FILTER (WHERE u.first_never <= c.cut) AS never_users
                FROM cuts c CROSS JOIN per_user u GROUP BY c.cut""",  # noqa: S608
                [consent_checks.WITHDRAWN, consent_checks.NO_CONSENT]).df())
    return pd.concat(frames, ignore_index=True)


def check_history(con: duckdb.DuckDBPyConnection, anchor: datetime, days: int = HISTORY_DAYS
                  ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(check_runs rows, check_results rows) of the generated daily runs."""
    rng = np.random.default_rng([20261122, 31])
    times = _run_times(anchor, days)
    consent_rows = _consent_by_day(con, [t for _, t in times])
    versions = {p.product_id: p.version for p in scenario.PRODUCTS_OF_SCENARIO}
    products = [p.product_id for p in scenario.PRODUCTS_OF_SCENARIO]
    runs, results = [], []
    for day, at in times:
        run_id = f"history-{at:%Y%m%dT%H%M}-{uuid.uuid5(RUN_NAMESPACE, at.isoformat()).hex[:8]}"
        found = []

        def add(check_id, kind, product_id, dataset, column, target, status, measured, threshold, reason,
                diagnostics=None, _found=found, _run=run_id, _at=at):
            _found.append({"run_id": _run, "check_id": check_id, "kind": kind, "product_id": product_id,
                           "dataset": dataset, "column_name": column, "target": target, "status": status,
                           "measured": measured, "threshold": threshold, "reason": reason,
                           "diagnostics": json.dumps({"generated": True, **(diagnostics or {})}), "sql": None,
                           "contract_id": next(p.contract_id for p in scenario.PRODUCTS_OF_SCENARIO
                                               if p.product_id == product_id),
                           "contract_version": versions[product_id], "started_at": _at,
                           "finished_at": _at + timedelta(seconds=5), "triggered_by": HISTORY_ACTOR})

        for product in scenario.PRODUCTS_OF_SCENARIO:
            pid = product.product_id
            for ds in product.datasets:
                if not ds.timestamp:
                    continue
                age = round(_age_days(pid, ds, day, rng), 2)
                for prop, limit in (("latency", ds.latency_days), ("frequency", ds.frequency_days)):
                    ok = age <= limit
                    add(f"{pid}/{ds.name}/{ds.timestamp}/freshness/{prop}", "freshness", pid, ds.name, ds.timestamp,
                        f"{pid}.{ds.name}.{ds.timestamp}", "passed" if ok else "failed", str(age), f"≤ {limit} d",
                        f"newest {ds.name}.{ds.timestamp} was {age} d old; {prop} allows {limit} d")
            for check_id, dataset, column, spike in _completeness_ids(product):
                failing = spike and day <= NULL_SPIKE_SINCE_DAYS
                add(check_id, "schema" if check_id.endswith("/not_null") else "quality", pid, dataset, column,
                    f"{pid}.{dataset}" + (f".{column}" if column else ""), "failed" if failing else "passed",
                    "15.0" if failing else "0", None,
                    "15.0 % null; must be < 1 %" if failing else "complete")
        if not consent_rows.empty:
            for row in consent_rows[consent_rows["cut"] == pd.Timestamp(at)].itertuples():
                status = "skipped" if not row.users else "failed" if row.violating_users else "passed"
                add(f"consent:newsletter-sends/sends/{row.purpose}", "consent", "newsletter-sends", "sends",
                    "user_id", "newsletter-sends.sends", status, str(row.violating_users),
                    "0 users without a valid consent at the time of use",
                    f"{row.violating_users} of {row.users} users had no valid '{row.purpose}' consent at a send",
                    {"purpose": row.purpose, "uses": row.uses, "users": row.users,
                     "violating_uses": row.violating_uses, "violating_users": row.violating_users,
                     "withdrawn_users": row.withdrawn_users, "never_users": row.never_users,
                     "coverage": (row.users - row.violating_users) / row.users if row.users else None})
        results += found
        runs.append({"run_id": run_id, "started_at": at, "finished_at": at + timedelta(seconds=5),
                     "state": "complete", "status": worst(r["status"] for r in found),
                     "triggered_by": HISTORY_ACTOR, "scope": ",".join(products), "products": products,
                     "pid": None, "host": None,
                     "note": "generated history (sample_data.history): SLO-relevant results only"})
    return pd.DataFrame(runs), pd.DataFrame(results)


def seed_history(con: duckdb.DuckDBPyConnection, out: Path, anchor: datetime,
                 days: int = HISTORY_DAYS) -> HistoryReport:
    """Ingest the lineage history and insert the daily runs not stored yet."""
    folder = Path(out) / "lineage"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "history.ndjson"
    events = [*lineage_events(anchor, days), consent_sync_event(out, anchor)]
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    report = ingest_paths(con, [path])
    runs, results = check_history(con, anchor, days)
    known = {r for (r,) in con.execute("SELECT run_id FROM check_runs WHERE run_id LIKE 'history-%'").fetchall()}
    runs = runs[~runs["run_id"].isin(known)]
    results = results[results["run_id"].isin(set(runs["run_id"]))]

    def write() -> None:
        with transaction(con):
            if len(runs):
                con.register("history_runs", runs)
                con.execute(f"INSERT INTO check_runs ({', '.join(runs.columns)}) "
                            f"SELECT {', '.join(runs.columns)} FROM history_runs")
                con.unregister("history_runs")
            if len(results):
                con.register("history_results", results)
                con.execute(f"INSERT INTO check_results ({', '.join(results.columns)}) "
                            f"SELECT {', '.join(results.columns)} FROM history_results")
                con.unregister("history_results")
            if len(runs):
                check_totals.write(con, list(runs["run_id"]))  # as checks.run_records stores a run

    retrying(write)
    return HistoryReport(len(runs), len(results), report)
