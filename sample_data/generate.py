"""`python -m sample_data seed`: write the sample mesh's files and ingest them into a store.

Layout under `out_dir` (default: `sample/` next to the DB file):
    data/<product_id>/<dataset>.parquet             the rows
    contracts/<domain>/<product_id>.odcs.yaml       current contract per product
    contract-history/<domain>/<product_id>-<version>.odcs.yaml   older revisions
    synthetic/contracts/<domain>/<product_id>.odcs.yaml          --products N
    (lineage files, when sample_data.lineage_events is present)
    models/<model>.md                               model cards (sample_data.models)

Re-seeding an existing DB is done in place and is idempotent: contracts are deterministic, so
re-ingesting them is a no-op, and an older revision is ingested only while its contract is
not in the store yet (ingesting it after the current one would make it the latest). Check
runs, audit records and other products already in the DB are kept; the data files are
rewritten against the current hour. Nothing is deleted, so a DB the app holds open is safe.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from catalog import store
from catalog.ingest import IngestReport, ingest_paths
from catalog.odcs import slug
from sample_data import consent, contracts, data, history, postgres_demo, scenario, synthetic

LINEAGE_MODULE = "sample_data.lineage_events"


class SeedError(Exception):
    """A generated file was rejected by the catalog: the generator is wrong, not the user."""


def current_hour() -> datetime:
    return datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


def seed(db_path: str | Path, *, extra_products: int = 0, out_dir: str | Path | None = None) -> str:
    """Generate the scenario (and `extra_products` synthetic products), ingest it, and
    return a short human summary."""
    if extra_products < 0:
        raise ValueError("extra_products must be 0 or more")
    started = time.perf_counter()
    db = Path(db_path).resolve()
    # Absolute paths: the store keeps each contract's source file, and dataset locations
    # are resolved relative to it later, from whatever working directory.
    out = Path(out_dir).resolve() if out_dir else db.parent / "sample"
    anchor = current_hour()

    # The rows do not depend on the contracts: build and write them while the contracts are
    # validated and ingested (numpy, Arrow and Parquet release the GIL for their work). The
    # synthetic contracts (`extra_products`) are written meanwhile by other processes.
    with ThreadPoolExecutor(max_workers=1) as pool, \
            (synthetic.writing(out / "synthetic" / "contracts", extra_products) if extra_products
             else contextlib.nullcontext()) as synthetic_written:
        rows = pool.submit(build_and_write_rows, out / "data", anchor)
        history_file = write_contract(out / "contract-history", scenario.RECOMMENDATIONS_V1,
                                      suffix=f"-{scenario.RECOMMENDATIONS_V1.version}")
        contract_files = [write_contract(out / "contracts", p) for p in scenario.PRODUCTS_OF_SCENARIO]
        with store.connect(db) as con:
            if not _contract_known(con, scenario.RECOMMENDATIONS_V1.contract_id):
                _require_clean(ingest_paths(con, [history_file]), "contract history")
            _require_clean(ingest_paths(con, [out / "contracts"]), "scenario contracts")
            tables, data_files = rows.result()
            lineage_note = _seed_lineage(con, out, anchor) + "\n  " + _seed_models(con, out)
            lineage_note += "\n  " + history.seed_history(con, out, anchor).note()
            # A product on PostgreSQL only when MESHGOV_DEMO_POSTGRES_URL names one.
            lineage_note += postgres_demo.seed_if_configured(con, out, tables)
            synthetic_note = ""
            if extra_products:
                report, synthetic_note = synthetic.seed_synthetic(con, out / "synthetic", extra_products,
                                                                  synthetic_written)
                _require_clean(report, "synthetic contracts")
            revisions = _count_revisions(con, [p.contract_id for p in scenario.PRODUCTS_OF_SCENARIO])
            history_revisions = _count_revisions(con, [scenario.RECOMMENDATIONS_V1.contract_id])
    facts = measure_planted(out / "data", anchor)
    return _summary(db, out, tables, data_files, len(contract_files) + 1, revisions, history_revisions,
                    facts, lineage_note, synthetic_note, time.perf_counter() - started)


def build_and_write_rows(folder: Path, anchor: datetime) -> tuple[dict[str, dict[str, pa.Table]], list[Path]]:
    tables = data.build(anchor)
    consent.add_history(tables)
    return tables, write_data(folder, tables)


def write_data(folder: Path, tables: dict[str, dict[str, pa.Table]]) -> list[Path]:
    written = []
    for product_id, datasets in tables.items():
        for name, table in datasets.items():
            path = folder / product_id / f"{name}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path, compression="zstd")
            written.append(path)
    return written


def write_contract(root: Path, product: contracts.Product, *, suffix: str = "") -> Path:
    """contracts/<domain>/<product_id>.odcs.yaml, its server path pointing at data/<product_id>/."""
    folder = root / slug(product.domain)
    relative_data = Path("..", "..", "data", product.product_id).as_posix()
    with_server = replace(product, data_folder=relative_data)
    return contracts.write(contracts.document(with_server), folder / f"{product.product_id}{suffix}.odcs.yaml")


def _contract_known(con: duckdb.DuckDBPyConnection, contract_id: str) -> bool:
    return _count_revisions(con, [contract_id]) > 0


def _count_revisions(con: duckdb.DuckDBPyConnection, contract_ids: list[str]) -> int:
    return con.execute("SELECT count(*) FROM contracts WHERE contract_id IN (SELECT unnest(?::TEXT[]))",
                       [contract_ids]).fetchone()[0]


def _require_clean(report: IngestReport, what: str) -> IngestReport:
    if report.rejected:
        reasons = "\n".join(f"  {r.file}: {r.reason}" for r in report.rejected[:20])
        more = f"\n  ... and {len(report.rejected) - 20} more" if len(report.rejected) > 20 else ""
        raise SeedError(f"the catalog rejected {len(report.rejected)} generated {what}:\n{reasons}{more}")
    return report


def _seed_lineage(con: duckdb.DuckDBPyConnection, out: Path, anchor: datetime) -> str:
    """Lineage events come from sample_data.lineage_events when that module is installed."""
    if importlib.util.find_spec(LINEAGE_MODULE) is None:
        return "lineage: skipped (sample_data.lineage_events not present)"
    events = importlib.import_module(LINEAGE_MODULE).write_events(out, anchor)
    report = _require_clean(ingest_paths(con, [events]), "lineage events")
    return f"lineage: {len(report.accepted)} records accepted from {events}"


def _seed_models(con: duckdb.DuckDBPyConnection, out: Path) -> str:
    """Model cards of the scenario's two models (sample_data.models), ingested like users' cards."""
    from sample_data import models

    report = _require_clean(ingest_paths(con, models.write_cards(out)), "model cards")
    return f"models: {len(report.accepted)} model cards accepted from {out / 'models'}"


# --- measuring what was planted ------------------------------------------------------------

_PLANTED_SQL = {
    "bias": """
        SELECT max(rate) - min(rate), string_agg(gender || ' ' || round(rate, 3), ', ' ORDER BY gender)
        FROM (SELECT gender, avg(selected_for_premium::INT) AS rate
              FROM read_parquet(?) GROUP BY gender)""",
    "null_spike": "SELECT avg((product_sku IS NULL)::INT) * 100, count(*) FROM read_parquet(?)",
    "consent": """SELECT count(*) FILTER (WHERE NOT consent_ai_recommendations),
                         avg((NOT consent_ai_recommendations)::INT) * 100 FROM read_parquet(?)""",
    "unclassified_pii": """SELECT count(*) FILTER (WHERE regexp_full_match(recipient_email,
                                  '[a-z0-9._%+-]+@[a-z0-9.-]+\\.[a-z]{2,}')), count(*) FROM read_parquet(?)""",
    "stale": "SELECT epoch(?::TIMESTAMP - max(ordered_at)) / 86400 FROM read_parquet(?)",
}


def measure_planted(data_dir: Path, anchor: datetime) -> dict[str, tuple]:
    """The planted defects as measured in the written Parquet (not as intended)."""
    def file(product: str, dataset: str) -> str:
        return str(data_dir / product / f"{dataset}.parquet")

    con = duckdb.connect()
    try:
        q = _PLANTED_SQL
        return {
            "bias": con.execute(q["bias"], [file("user-segments", "predictions")]).fetchone(),
            "null_spike": con.execute(q["null_spike"],
                                      [file("product-recommendations", "recommendations")]).fetchone(),
            "consent": con.execute(q["consent"], [file("newsletter-sends", "audience")]).fetchone(),
            "unclassified_pii": con.execute(q["unclassified_pii"],
                                            [file("newsletter-interactions", "interactions")]).fetchone(),
            "stale": con.execute(q["stale"], [anchor.replace(tzinfo=None), file("commerce-orders", "orders")]).fetchone(),
        }
    finally:
        con.close()


def _summary(db: Path, out: Path, tables, data_files, n_contract_files: int, revisions: int,
             history_revisions: int, facts: dict, lineage_note: str, synthetic_note: str, seconds: float) -> str:
    n_datasets = sum(len(ds) for ds in tables.values())
    n_rows = sum(t.num_rows for ds in tables.values() for t in ds.values())
    domains = {p.domain for p in scenario.PRODUCTS_OF_SCENARIO}
    old, new = scenario.RECOMMENDATIONS_V1, scenario.product(scenario.BREAKING_CHANGE_PRODUCT)
    bias, nulls, consent, pii, stale = (facts[k] for k in
                                        ("bias", "null_spike", "consent", "unclassified_pii", "stale"))
    lines = [
        f"Seeded the sample mesh into {db} in {seconds:.1f} s",
        f"  {len(tables)} products in {len(domains)} domains, {n_datasets} datasets, {n_rows:,} rows",
        f"  files under {out}: {len(data_files)} Parquet, {n_contract_files} contracts "
        f"({revisions} contract revisions in the store)",
        f"  {lineage_note}",
    ]
    if synthetic_note:
        lines.append(f"  {synthetic_note}")
    latency = scenario.ORDERS.latency_days
    planted = [
        ("stale", f"commerce-orders orders.ordered_at: newest row is {stale[0]:.1f} days old "
                  f"(latency and frequency SLAs: {latency} d)"),
        ("null spike", f"product-recommendations recommendations.product_sku: {nulls[0]:.1f}% null "
                       "(rule recommendations_product_sku_nulls: < 1%)"),
        ("breaking change", f"{old.product_id} {old.version} -> {new.version}: "
                            f"{'; '.join(contracts.schema_changes(old, new))} "
                            f"({history_revisions} revisions stored)"),
        ("bias", f"user-segments predictions: selection-rate gap {bias[0]:.3f} by gender "
                 f"({bias[1]}; fairness check of premium-propensity: selection-rate ratio >= 0.8)"),
        ("consent", f"newsletter-sends audience: {consent[0]} users ({consent[1]:.1f}%) without "
                    "AI-recommendation consent (consent check: 0)"),
        ("unclassified PII", f"newsletter-interactions interactions.recipient_email: {pii[0]:,} of "
                             f"{pii[1]:,} values are emails; classified internal, no pii tag"),
    ]
    lines.append("  planted defects:")
    lines += [f"    {label:<17}{text}" for label, text in planted]
    return "\n".join(lines)
