"""Models as the catalog knows them, for the pages and the checks: the list with each model's
latest card and bias verdict, card revisions, the latest card, its eval results, the products
it reads and writes, and the models whose cards declare a predictions dataset.

Parsing and storing cards is catalog.modelcards. Never imports streamlit.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import duckdb

from catalog.modelcards import FRONT_MATTER

if TYPE_CHECKING:
    import pandas as pd

LATEST_FAIRNESS_SQL = """
    SELECT model, arg_max(status, finished_at) AS bias_status, arg_max(reason, finished_at) AS bias_reason,
           max(finished_at) AS bias_checked_at
    FROM (SELECT json_extract_string(diagnostics, '$.model') AS model, status, reason, finished_at
          FROM check_results WHERE kind = 'fairness')
    GROUP BY model"""


def list_models(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """One row per model: version, revision, owner, status, license, missing sections, the
    latest bias audit outcome, linked products."""
    return con.execute(f"""
        WITH latest_card AS (
            SELECT model_id, max(revision) AS revision, arg_max(missing, revision) AS missing,
                   arg_max(warnings, revision) AS warnings, arg_max(ingested_at, revision) AS ingested_at
            FROM model_cards GROUP BY model_id),
        links AS (SELECT model_id, list(DISTINCT product_id ORDER BY product_id) AS products
                  FROM model_products GROUP BY model_id)
        SELECT m.model_id, m.name, m.version, c.revision, m.owner, m.status, m.license, m.pipeline_tag,
               c.missing, c.warnings, coalesce(l.products, []) AS products, m.predictions IS NOT NULL AS audited,
               f.bias_status, f.bias_reason, f.bias_checked_at, c.ingested_at
        FROM models m JOIN latest_card c USING (model_id) LEFT JOIN links l USING (model_id)
        LEFT JOIN ({LATEST_FAIRNESS_SQL}) f ON f.model = m.model_id
        ORDER BY m.name""").df()


def card_revisions(con: duckdb.DuckDBPyConnection, model_id: str) -> pd.DataFrame:
    return con.execute("SELECT model_id, revision, version, content_hash, missing, warnings, source_file, "
                       "ingested_at, ingested_by, raw_text FROM model_cards WHERE model_id = ? "
                       "ORDER BY revision DESC", [model_id]).df()


def latest_card(con: duckdb.DuckDBPyConnection, model_id: str) -> dict[str, Any] | None:
    row = con.execute("SELECT raw_text, revision, version, metadata, sections, missing FROM model_cards "
                      "WHERE model_id = ? ORDER BY revision DESC LIMIT 1", [model_id]).fetchone()
    if row is None:
        return None
    return {"raw_text": row[0], "revision": row[1], "version": row[2], "metadata": json.loads(row[3] or "{}"),
            "sections": json.loads(row[4] or "[]"), "missing": list(row[5] or [])}


def card_body(raw_text: str) -> str:
    """The Markdown after the front matter (what a page renders)."""
    text = raw_text.replace("\r\n", "\n").replace("\r", "\n")
    match = FRONT_MATTER.match(text)
    return text[match.end():] if match else text


def eval_results(con: duckdb.DuckDBPyConnection, model_id: str) -> pd.DataFrame:
    return con.execute("SELECT task_type, dataset_name, dataset_type, dataset_split, metric_type, metric_name, "
                       "value, value_text FROM model_eval_results WHERE model_id = ? "
                       "ORDER BY dataset_name, metric_type", [model_id]).df()


def linked_products(con: duckdb.DuckDBPyConnection, model_id: str) -> pd.DataFrame:
    """Products the card names, and whether each is in the catalog."""
    return con.execute("""
        SELECT mp.product_id, mp.relation, mp.source, p.name, p.product_id IS NOT NULL AS in_catalog
        FROM model_products mp LEFT JOIN products p USING (product_id)
        WHERE mp.model_id = ? ORDER BY mp.relation, mp.product_id""", [model_id]).df()


def models_with_predictions(con: duckdb.DuckDBPyConnection, product_ids: list[str] | None = None) -> list[dict[str, Any]]:
    """Models whose card configures a predictions dataset, with where that dataset lives
    (scope: the models linked to `product_ids`, or all)."""
    rows = con.execute("""
        SELECT m.model_id, m.version, m.predictions, c.revision, c.missing, m.owner, m.product_id,
               list(DISTINCT mp.product_id) FILTER (WHERE mp.product_id IS NOT NULL) AS products
        FROM models m JOIN (SELECT model_id, max(revision) AS revision, arg_max(missing, revision) AS missing
                            FROM model_cards GROUP BY model_id) c USING (model_id)
        LEFT JOIN model_products mp USING (model_id)
        GROUP BY ALL ORDER BY m.model_id""").fetchall()
    found = []
    for model_id, version, predictions, revision, missing, owner, own_product, products in rows:
        config = json.loads(predictions) if predictions else None
        linked = set(products or []) | ({own_product} if own_product else set())
        if product_ids is not None and not linked & set(product_ids):
            continue
        found.append({"model_id": model_id, "version": version, "revision": revision, "predictions": config,
                      "missing": list(missing or []), "owner": owner, "products": sorted(linked),
                      "product_id": own_product})
    return found
