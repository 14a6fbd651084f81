"""Checks of models, for the runner: model-card governance (required sections) and the bias
audit of each model whose card names a predictions dataset. Both yield the one result model,
so they show on the Checks page and count in the overview under the model's product.

Reading what to check needs the store; the audit itself reads only the data file, so the
runner calls `load_work` while it holds the store and `run` after it let go.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import duckdb

from catalog import model_queries, modelcards
from catalog.locations import Location, dataset_locations
from checks import compiler, fairness
from checks.result import CheckResult

if TYPE_CHECKING:
    import pandas as pd

SECTION_STATUS = "failed"  # a card without its governance sections fails the model's governance


@dataclass
class ModelWork:
    model_id: str
    version: str | None
    revision: int
    missing: list[str]
    product_id: str | None                   # the catalog product its results count under
    predictions: dict[str, Any] | None = None
    location: Location | None = None
    problem: str | None = None               # why the bias audit cannot run
    policy: fairness.FairnessPolicy | None = None
    notes: list[str] = field(default_factory=list)


def load_work(con: duckdb.DuckDBPyConnection, product_ids: list[str] | None) -> list[ModelWork]:
    """Models linked to `product_ids` (None: every model), with their predictions' location."""
    try:
        models = model_queries.models_with_predictions(con, product_ids)
    except duckdb.CatalogException:
        return []  # a store without the models tables: nothing to check
    known = {r[0] for r in con.execute("SELECT product_id FROM products").fetchall()}
    work = []
    for model in models:
        config = model["predictions"]
        # the model's own product first (the one its card names), then its predictions', then any link
        candidates = [model.get("product_id"), (config or {}).get("product"), *model["products"]]
        product = next((p for p in candidates if p in known), None)
        item = ModelWork(model["model_id"], model["version"], model["revision"], model["missing"], product, config)
        if config:
            try:
                item.policy = fairness.load_policy(model["model_id"])
            except fairness.BiasInputError as exc:
                item.problem = str(exc)
            contract = con.execute(
                "SELECT contract_id FROM contracts WHERE product_id = ? ORDER BY revision DESC LIMIT 1",
                [config["product"]]).fetchone()
            if contract is None:
                item.problem = item.problem or (f"predictions product {config['product']} is not in the catalog "
                                                "(no contract): nothing to audit")
            else:
                item.location = dataset_locations(con, contract[0]).get(config["dataset"])
                if item.location is None:
                    item.problem = item.problem or (f"dataset {config['dataset']} of {config['product']} has no "
                                                    "local server in its contract: no data to audit")
        work.append(item)
    return work


def version_label(item: ModelWork) -> str:
    return item.version or f"card revision {item.revision}"


def card_results(item: ModelWork) -> list[CheckResult]:
    """One result per required card section: passed when filled, failed when missing."""
    now = compiler.now_utc()
    results = []
    for key, (label, _pattern) in modelcards.REQUIRED_SECTIONS.items():
        missing = key in item.missing
        results.append(CheckResult(
            check_id=f"model-card:{item.model_id}/{key}", kind="model_card", target=f"model:{item.model_id}",
            status=SECTION_STATUS if missing else "passed",  # type: ignore[arg-type]
            reason=(f"the model card of {item.model_id} has no {label} section (or only placeholders)" if missing
                    else f"the model card documents {label}"),
            product_id=item.product_id, diagnostics={"model": item.model_id, "model_version": item.version,
                                                     "card_revision": item.revision, "section": key},
            contract_version=item.version, started_at=now, finished_at=now))
    return results


def bias_result(item: ModelWork, *, timeout_s: float = 60.0) -> CheckResult | None:
    if not item.predictions:
        return None
    started = compiler.now_utc()
    config = item.predictions
    check_id = f"fairness:{item.model_id}"
    target = f"model:{item.model_id}"

    def error(reason: str) -> CheckResult:
        return CheckResult(check_id=check_id, kind="fairness", target=target, status="error", reason=reason,
                           product_id=item.product_id, dataset=config.get("dataset"),
                           column_name=", ".join(config.get("sensitive") or []),
                           diagnostics={"model": item.model_id, "model_version": version_label(item)},
                           contract_version=version_label(item), started_at=started,
                           finished_at=compiler.now_utc())

    if item.problem:
        return error(item.problem)
    location = item.location
    assert location is not None and item.policy is not None
    if location.refused:
        return error(location.refused)
    try:
        setup, relation = compiler.relation_sql(location)
        with compiler.trusted_connection() as con:
            for statement in setup:
                con.execute(statement)
            report = fairness.audit(con, relation, y_true=config.get("y_true"), y_pred=config["y_pred"],
                                    sensitive=config["sensitive"], min_group_size=item.policy.min_group_size,
                                    source=f"{config['product']}.{config['dataset']}", timeout_s=timeout_s)
    except fairness.BiasInputError as exc:
        return error(str(exc))
    except Exception as exc:  # noqa: BLE001 - one unreadable dataset must not stop the run
        return error(f"bias audit failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}")
    return fairness.check_result(report, item.policy, check_id=check_id, target=target,
                                 product_id=item.product_id, dataset=config["dataset"], model=item.model_id,
                                 model_version=version_label(item), started=started)


def run(work: list[ModelWork], *, timeout_s: float = 60.0) -> list[CheckResult]:
    results: list[CheckResult] = []
    for item in work:
        results += card_results(item)
        audit = bias_result(item, timeout_s=timeout_s)
        if audit is not None:
            results.append(audit)
    return results


# --- reading back (the Fairness and Models pages) ---------------------------------------------------


def fairness_history(con: duckdb.DuckDBPyConnection, model_id: str | None = None) -> pd.DataFrame:
    """Every stored bias audit (complete runs), oldest first: model, version, status,
    measured ratio, reason, diagnostics (JSON text with the by-group table)."""
    where = "AND json_extract_string(r.diagnostics, '$.model') = ?" if model_id else ""
    return con.execute(f"""
        SELECT json_extract_string(r.diagnostics, '$.model') AS model_id,
               coalesce(json_extract_string(r.diagnostics, '$.model_version'), r.contract_version) AS model_version,
               r.run_id, r.status, r.measured, r.threshold, r.reason, r.diagnostics, r.finished_at
        FROM check_results r JOIN check_runs cr USING (run_id)
        WHERE r.kind = 'fairness' AND cr.state = 'complete' {where}
        ORDER BY r.finished_at""", [model_id] if model_id else []).df()


def card_findings(con: duckdb.DuckDBPyConnection, model_id: str) -> pd.DataFrame:
    """The latest stored model-card results of a model."""
    return con.execute("""
        SELECT check_id, status, reason, finished_at FROM check_results
        WHERE kind = 'model_card' AND target = ? AND run_id = (
            SELECT arg_max(r.run_id, r.finished_at) FROM check_results r JOIN check_runs cr USING (run_id)
            WHERE r.kind = 'model_card' AND r.target = ? AND cr.state = 'complete')
        ORDER BY check_id""", [f"model:{model_id}", f"model:{model_id}"]).df()
