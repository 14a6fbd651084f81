"""The seed scenario's lineage: its events, their match with the contracts, and the blast
radius of the planted failing product on the seeded demo."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pyarrow.parquet as pq
import pytest

from catalog import lineage, openlineage
from catalog.store import connect
from sample_data import lineage_events

ANCHOR = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
MODELS = {"model:model-registry://meshgov/user-segments/rfm-segmenter",
          "model:model-registry://meshgov/user-segments/premium-propensity"}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    from sample_data import generate

    folder = tmp_path_factory.mktemp("seed")
    db = folder / "demo.duckdb"
    generate.seed(db, out_dir=folder / "sample")
    return db, folder / "sample"


def test_events_are_deterministic_and_clean(tmp_path):
    first = lineage_events.write_events(tmp_path / "a", ANCHOR).read_text()
    second = lineage_events.write_events(tmp_path / "a", ANCHOR).read_text()
    assert first == second, "the same anchor writes the same events (re-seeding is a no-op)"
    events = [json.loads(line) for line in first.splitlines()]
    assert [e["eventTime"] for e in events] == sorted(e["eventTime"] for e in events), "oldest first"
    for index, event in enumerate(events):
        checked = openlineage.check_event(event)
        assert not checked.warnings, f"event {index} of the seed should be spotless: {checked.warnings}"
    jobs = {e["job"]["name"] for e in events}
    assert {"segmentation.train_and_assign", "recommendations.generate", "newsletter.build_and_send",
            "interactions.collect", "customer.enrich_profiles"} <= jobs
    by_run: dict[str, list[str]] = {}
    for e in events:
        by_run.setdefault(e["run"]["runId"], []).append(e["eventType"])
    assert all(types[0] == "START" and types[-1] in ("COMPLETE", "FAIL") for types in by_run.values()), by_run


def test_dataset_names_are_the_parquet_paths_the_seed_writes(tmp_path):
    events = lineage_events.pipeline_events(tmp_path, ANCHOR)
    names = {d["name"] for e in events for d in e["inputs"] + e["outputs"] if d["namespace"] == "file"}
    expected = {str((tmp_path / "data" / p / f"{d}.parquet").resolve()) for p, d in lineage_events.SCHEMAS}
    assert names == expected


def test_seeded_lineage_matches_every_catalog_dataset(seeded):
    db, out = seeded
    with connect(db) as con:
        graph = lineage.build_graph(con)
    unmatched = [n for n, a in graph.flow.nodes(data=True) if a.get("kind") == "external" and a.get("namespace") == "file"]
    assert not unmatched, f"every file the events name is a contract's dataset: {unmatched}"
    datasets = {n for n, a in graph.flow.nodes(data=True) if a.get("kind") == "dataset"}
    assert all(graph.flow.degree(n) > 0 for n in datasets), "every catalog dataset takes part in lineage"
    assert set(graph.flow.nodes) >= MODELS
    assert graph.flow.nodes["model:model-registry://meshgov/user-segments/rfm-segmenter"]["version"] == "2.3.0", \
        "a recommendation traces back to the model version"
    for (product, dataset), columns in lineage_events.SCHEMAS.items():
        actual = pq.read_schema(out / "data" / product / f"{dataset}.parquet").names
        assert [c for c, _ in columns] == actual, f"{product}.{dataset}: schema facet drifted from the data"
    loop = lineage.path_between(graph, "product:newsletter-interactions", "product:customer-profiles")
    assert loop == ["product:newsletter-interactions", "product:customer-profiles"], "interactions feed back"
    up, _ = lineage.column_lineage(graph, "dataset:newsletter-interactions.interactions#recipient_email",
                                   direction="upstream")
    assert "dataset:customer-profiles.users#email" in up, "the unclassified PII column comes from users.email"
    up, _ = lineage.column_lineage(graph, "dataset:product-recommendations.recommendations#segment_id",
                                   direction="upstream")
    assert "dataset:user-segments.segment_assignments#segment_id" in up


def test_blast_radius_of_the_planted_failing_product(seeded):
    """Stale commerce-orders (its loader fails since 9 days) hits the models and the newsletter."""
    db, _ = seeded
    from checks import runner

    runner.run_checks(db, triggered_by="lineage-test")
    with connect(db) as con:
        graph = lineage.build_graph(con)
        statuses = lineage.latest_statuses(con)
        failing = lineage.failing_products(con)
    assert "product:commerce-orders" in failing, f"the stale product fails its checks: {statuses}"
    assert failing == lineage.failing_products(None, statuses), \
        "the store's failing products (sorted by DuckDB) in the order sorting the colours in Python gives"
    radius = lineage.blast_radius(graph, "product:commerce-orders", statuses=statuses)
    assert MODELS <= set(radius.models), f"its downstream models: {radius.models}"
    assert "product:newsletter-sends" in radius.products, f"and the newsletter: {radius.products}"
    assert {"product:user-segments", "product:product-recommendations"} <= set(radius.products)
    with connect(db) as con:
        runs = openlineage.runs(con, job_namespace=lineage_events.NAMESPACE, job_name="commerce.load_orders")
    # sample_data.history adds weeks of earlier runs: the newest still failed, the last success is 9 days old
    assert list(runs["state"])[0] == "FAIL", "the loader's latest run failed: why orders are stale"
    assert "COMPLETE" in set(runs["state"]), list(runs["state"])
