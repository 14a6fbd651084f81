"""OpenLineage events of the seed scenario's pipeline, written as NDJSON for `catalog ingest`.

    crm accounts ──► customer.enrich_profiles ◄── newsletter-interactions   (the loop back)
                              │
                              ▼
    customer-profiles.users, customer-consent.consent, commerce-orders.orders
                              │
                              ▼
    segmentation.train_and_assign ──► user-segments (features, segment_assignments,
                              │        predictions) + models rfm-segmenter, premium-propensity
                              ▼
    recommendations.generate (+ commerce-products.products, commerce-orders.orders)
                              ▼
    product-recommendations.recommendations
                              ▼
    newsletter.build_and_send (+ users, consent) ──► newsletter-sends (sends, audience)
                              ▼
    interactions.collect (+ mail tracking stream) ──► newsletter-interactions.interactions

Datasets of the catalog are named the way their contracts resolve them: namespace `file`,
name = the absolute path of the Parquet file under `<out_dir>/data/<product_id>/`. Sources
outside the mesh (the CRM, the shop database, the mail tracking stream) and the models are
other namespaces, so they show up as external and model nodes. Run ids are derived from the
anchor, so seeding twice in the same hour writes the same events (re-ingest is a no-op).
The order loader's latest run failed: that is why commerce-orders is stale.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

PRODUCER = "https://github.com/meshgov/meshgov/tree/main/sample_data/lineage_events.py"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
FACETS = "https://openlineage.io/spec/facets"
NAMESPACE = "meshgov-demo"
RUN_NAMESPACE = uuid.UUID("7d1c9a52-3f0e-4a8b-9c61-2b5f0e6d4a10")

# Column names and types as the scenario's Parquet files have them (sample_data/data.py).
SCHEMAS: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("customer-profiles", "users"): [("user_id", "VARCHAR"), ("email", "VARCHAR"), ("full_name", "VARCHAR"),
                                     ("birth_date", "DATE"), ("phone", "VARCHAR"), ("country", "VARCHAR"),
                                     ("signup_at", "TIMESTAMP WITH TIME ZONE")],
    ("customer-consent", "consent"): [("user_id", "VARCHAR"), ("purpose", "VARCHAR"), ("granted", "BOOLEAN"),
                                      ("updated_at", "TIMESTAMP WITH TIME ZONE")],
    ("user-segments", "features"): [("user_id", "VARCHAR"), ("recency_days", "INTEGER"), ("frequency", "INTEGER"),
                                    ("monetary", "DECIMAL(12,2)"), ("country", "VARCHAR"), ("age_band", "VARCHAR"),
                                    ("gender", "VARCHAR")],
    ("user-segments", "segment_assignments"): [("user_id", "VARCHAR"), ("segment_id", "VARCHAR"),
                                               ("model_version", "VARCHAR"),
                                               ("assigned_at", "TIMESTAMP WITH TIME ZONE")],
    ("user-segments", "predictions"): [("user_id", "VARCHAR"), ("gender", "VARCHAR"), ("age_band", "VARCHAR"),
                                       ("selected_for_premium", "BOOLEAN"), ("score", "DOUBLE"),
                                       ("predicted_at", "TIMESTAMP WITH TIME ZONE")],
    ("product-recommendations", "recommendations"): [("user_id", "VARCHAR"), ("product_sku", "VARCHAR"),
                                                     ("rank", "INTEGER"), ("score", "DOUBLE"),
                                                     ("segment_id", "VARCHAR"),
                                                     ("generated_at", "TIMESTAMP WITH TIME ZONE")],
    ("newsletter-sends", "sends"): [("send_id", "VARCHAR"), ("user_id", "VARCHAR"), ("email", "VARCHAR"),
                                    ("campaign_id", "VARCHAR"), ("sent_at", "TIMESTAMP WITH TIME ZONE")],
    ("newsletter-sends", "audience"): [("user_id", "VARCHAR"), ("consent_ai_recommendations", "BOOLEAN"),
                                       ("consent_newsletter", "BOOLEAN"),
                                       ("snapshot_at", "TIMESTAMP WITH TIME ZONE")],
    ("newsletter-interactions", "interactions"): [("event_id", "VARCHAR"), ("send_id", "VARCHAR"),
                                                  ("user_id", "VARCHAR"), ("event_type", "VARCHAR"),
                                                  ("event_at", "TIMESTAMP WITH TIME ZONE"),
                                                  ("recipient_email", "VARCHAR")],
    ("commerce-orders", "orders"): [("order_id", "VARCHAR"), ("user_id", "VARCHAR"), ("sku", "VARCHAR"),
                                    ("quantity", "INTEGER"), ("amount", "DECIMAL(12,2)"), ("currency", "VARCHAR"),
                                    ("ordered_at", "TIMESTAMP WITH TIME ZONE")],
    ("commerce-products", "products"): [("sku", "VARCHAR"), ("product_name", "VARCHAR"), ("category", "VARCHAR"),
                                        ("price", "DECIMAL(10,2)"), ("updated_at", "TIMESTAMP WITH TIME ZONE")],
}

# Sources outside the mesh: (namespace, name, columns).
CRM = ("postgres://crm.internal:5432", "crm.public.accounts",
       [("account_id", "BIGINT"), ("email", "VARCHAR"), ("first_name", "VARCHAR"), ("last_name", "VARCHAR"),
        ("birth_date", "DATE"), ("mobile", "VARCHAR"), ("country_code", "VARCHAR"), ("created_at", "TIMESTAMP")])
SHOP_ORDERS = ("postgres://shop.internal:5432", "shop.public.orders",
               [("id", "VARCHAR"), ("customer_id", "VARCHAR"), ("sku", "VARCHAR"), ("qty", "INTEGER"),
                ("total", "NUMERIC"), ("currency", "VARCHAR"), ("created_at", "TIMESTAMP")])
SHOP_PRODUCTS = ("postgres://shop.internal:5432", "shop.public.products",
                 [("sku", "VARCHAR"), ("title", "VARCHAR"), ("category", "VARCHAR"), ("list_price", "NUMERIC"),
                  ("modified_at", "TIMESTAMP")])
MAIL_TRACKING = ("kafka://events.internal:9092", "mail.tracking",
                 [("message_id", "VARCHAR"), ("event", "VARCHAR"), ("timestamp", "TIMESTAMP"),
                  ("recipient", "VARCHAR")])
MODELS = {"rfm-segmenter": "2.3.0", "premium-propensity": "1.1.0"}
MODEL_NAMESPACE = "model-registry://meshgov"

OWNERS = {"customer": "team:customer-data", "ai-ml": "team:ai-ml", "marketing": "team:marketing-tech",
          "commerce": "team:commerce-platform"}


def write_events(out_dir: Path, anchor: datetime) -> Path:
    """Write `<out_dir>/lineage/pipeline.ndjson` (START + COMPLETE/FAIL per run) and return its path."""
    out_dir = Path(out_dir)
    folder = out_dir / "lineage"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pipeline.ndjson"
    events = pipeline_events(out_dir, anchor)
    path.write_text("".join(json.dumps(e, ensure_ascii=False) + "\n" for e in events), encoding="utf-8")
    return path


def pipeline_events(out_dir: Path, anchor: datetime) -> list[dict]:
    """The events, oldest first; plain dicts in OpenLineage 2-0-2 shape."""
    p = _Pipeline(Path(out_dir), anchor)
    users, consent = p.ds("customer-profiles", "users"), p.ds("customer-consent", "consent")
    orders, products = p.ds("commerce-orders", "orders"), p.ds("commerce-products", "products")
    features = p.ds("user-segments", "features")
    assignments = p.ds("user-segments", "segment_assignments")
    predictions = p.ds("user-segments", "predictions")
    recommendations = p.ds("product-recommendations", "recommendations")
    sends, audience = p.ds("newsletter-sends", "sends"), p.ds("newsletter-sends", "audience")
    interactions = p.ds("newsletter-interactions", "interactions")
    crm, shop_orders, shop_products, tracking = (p.external(*s) for s in (CRM, SHOP_ORDERS, SHOP_PRODUCTS,
                                                                           MAIL_TRACKING))
    rfm, propensity = (p.model(name) for name in MODELS)

    h, d, m = timedelta(hours=1), timedelta(days=1), timedelta(minutes=1)
    # The order loader last succeeded 9 days ago and fails since: commerce-orders is stale.
    p.run("commerce.load_orders", "commerce", [shop_orders], [orders], start=-9 * d - 40 * m, end=-9 * d - 25 * m,
          lineage={orders: {"order_id": [(shop_orders, "id", "DIRECT", "IDENTITY")],
                            "user_id": [(shop_orders, "customer_id", "DIRECT", "IDENTITY")],
                            "sku": [(shop_orders, "sku", "DIRECT", "IDENTITY")],
                            "quantity": [(shop_orders, "qty", "DIRECT", "IDENTITY")],
                            "amount": [(shop_orders, "total", "DIRECT", "TRANSFORMATION")],
                            "currency": [(shop_orders, "currency", "DIRECT", "IDENTITY")],
                            "ordered_at": [(shop_orders, "created_at", "DIRECT", "TRANSFORMATION")]}},
          description="Loads yesterday's web-shop orders from the order service database.")
    p.run("commerce.load_orders", "commerce", [shop_orders], [orders], start=-70 * m, end=-65 * m, state="FAIL",
          error="could not connect to shop.internal:5432: connection refused",
          description="Loads yesterday's web-shop orders from the order service database.")
    p.run("commerce.sync_catalogue", "commerce", [shop_products], [products], start=-4 * h, end=-4 * h + 3 * m,
          lineage={products: {"sku": [(shop_products, "sku", "DIRECT", "IDENTITY")],
                              "product_name": [(shop_products, "title", "DIRECT", "IDENTITY")],
                              "category": [(shop_products, "category", "DIRECT", "IDENTITY")],
                              "price": [(shop_products, "list_price", "DIRECT", "TRANSFORMATION")],
                              "updated_at": [(shop_products, "modified_at", "DIRECT", "IDENTITY")]}},
          description="Mirrors the shop's product catalogue with list prices.")
    p.run("customer.enrich_profiles", "customer", [crm, interactions], [users], start=-3 * h, end=-3 * h + 6 * m,
          lineage={users: {"user_id": [(crm, "account_id", "DIRECT", "TRANSFORMATION")],
                           "email": [(crm, "email", "DIRECT", "IDENTITY")],
                           "full_name": [(crm, "first_name", "DIRECT", "TRANSFORMATION"),
                                         (crm, "last_name", "DIRECT", "TRANSFORMATION")],
                           "birth_date": [(crm, "birth_date", "DIRECT", "IDENTITY")],
                           "phone": [(crm, "mobile", "DIRECT", "IDENTITY")],
                           "country": [(crm, "country_code", "DIRECT", "IDENTITY")],
                           "signup_at": [(crm, "created_at", "DIRECT", "IDENTITY")],
                           "": [(interactions, "user_id", "INDIRECT", "JOIN"),
                                (interactions, "event_type", "INDIRECT", "FILTER")]}},
          description="Refreshes customer profiles from the CRM, keeping customers active in newsletters.")
    p.run("segmentation.train_and_assign", "ai-ml", [users, consent, orders],
          [features, assignments, predictions, rfm, propensity], start=-135 * m, end=-62 * m,
          lineage={features: {"user_id": [(users, "user_id", "DIRECT", "IDENTITY")],
                              "recency_days": [(orders, "ordered_at", "DIRECT", "AGGREGATION")],
                              "frequency": [(orders, "order_id", "DIRECT", "AGGREGATION")],
                              "monetary": [(orders, "amount", "DIRECT", "AGGREGATION")],
                              "country": [(users, "country", "DIRECT", "IDENTITY")],
                              "age_band": [(users, "birth_date", "DIRECT", "TRANSFORMATION")],
                              "": [(consent, "purpose", "INDIRECT", "FILTER"),
                                   (consent, "granted", "INDIRECT", "FILTER")]},
                   assignments: {"user_id": [(users, "user_id", "DIRECT", "IDENTITY")],
                                 "segment_id": [(orders, "ordered_at", "INDIRECT", "AGGREGATION"),
                                                (orders, "order_id", "INDIRECT", "AGGREGATION"),
                                                (orders, "amount", "INDIRECT", "AGGREGATION")],
                                 "": [(consent, "granted", "INDIRECT", "FILTER")]},
                   predictions: {"user_id": [(users, "user_id", "DIRECT", "IDENTITY")],
                                 "age_band": [(users, "birth_date", "DIRECT", "TRANSFORMATION")],
                                 "score": [(orders, "amount", "INDIRECT", "AGGREGATION"),
                                           (orders, "order_id", "INDIRECT", "AGGREGATION")],
                                 "selected_for_premium": [(orders, "amount", "INDIRECT", "AGGREGATION")],
                                 "": [(consent, "granted", "INDIRECT", "FILTER")]}},
          description="Builds RFM features, trains the segmentation and premium-propensity models, "
                      "assigns segments and scores customers who consented to analytics.")
    p.run("recommendations.generate", "marketing", [assignments, products, orders, consent], [recommendations],
          start=-110 * m, end=-88 * m,
          lineage={recommendations: {"user_id": [(assignments, "user_id", "DIRECT", "IDENTITY")],
                                     "product_sku": [(products, "sku", "DIRECT", "IDENTITY")],
                                     "rank": [(orders, "sku", "INDIRECT", "SORT")],
                                     "score": [(orders, "sku", "DIRECT", "AGGREGATION"),
                                               (orders, "quantity", "DIRECT", "AGGREGATION")],
                                     "segment_id": [(assignments, "segment_id", "DIRECT", "IDENTITY")],
                                     "": [(consent, "granted", "INDIRECT", "FILTER")]}},
          description="Top-5 products per segmented customer who consented to AI recommendations.")
    p.run("newsletter.build_and_send", "marketing", [recommendations, users, consent], [sends, audience],
          start=-2 * d - 50 * m, end=-2 * d, quality={recommendations: [("not_null", "product_sku", False),
                                                                        ("row_count_at_least", None, True)]},
          lineage={sends: {"user_id": [(consent, "user_id", "DIRECT", "IDENTITY")],
                           "email": [(users, "email", "DIRECT", "IDENTITY")],
                           "": [(recommendations, "product_sku", "INDIRECT", "JOIN"),
                                (recommendations, "rank", "INDIRECT", "FILTER")]},
                   audience: {"user_id": [(consent, "user_id", "DIRECT", "IDENTITY")],
                              "consent_ai_recommendations": [(consent, "granted", "DIRECT", "IDENTITY")],
                              "consent_newsletter": [(consent, "granted", "DIRECT", "IDENTITY")],
                              "": [(consent, "purpose", "INDIRECT", "FILTER")]}},
          description="Builds the weekly audience and sends each member a newsletter with their "
                      "recommendations.")
    p.run("interactions.collect", "marketing", [sends, tracking], [interactions], start=-25 * m, end=-6 * m,
          lineage={interactions: {"event_id": [(tracking, "message_id", "DIRECT", "TRANSFORMATION")],
                                  "send_id": [(sends, "send_id", "DIRECT", "IDENTITY")],
                                  "user_id": [(sends, "user_id", "DIRECT", "IDENTITY")],
                                  "event_type": [(tracking, "event", "DIRECT", "IDENTITY")],
                                  "event_at": [(tracking, "timestamp", "DIRECT", "IDENTITY")],
                                  "recipient_email": [(tracking, "recipient", "DIRECT", "IDENTITY"),
                                                      (sends, "email", "DIRECT", "IDENTITY")]}},
          description="Collects opens, clicks and conversions of newsletter emails from the mail service.")
    return sorted(p.events, key=lambda e: e["eventTime"])


class _Pipeline:
    """Small builder: datasets as (namespace, name, columns, domain) and runs as events."""

    def __init__(self, out_dir: Path, anchor: datetime):
        self.out_dir, self.anchor = out_dir, anchor
        self.events: list[dict] = []
        self.runs = 0
        self.meta: dict[tuple[str, str], dict] = {}

    def ds(self, product_id: str, dataset: str) -> tuple[str, str]:
        path = (self.out_dir / "data" / product_id / f"{dataset}.parquet").resolve()
        key = ("file", str(path))
        self.meta[key] = {"columns": SCHEMAS[(product_id, dataset)], "file": path,
                          "owner": OWNERS[_domain_of(product_id)],
                          "doc": f"{dataset} of the {product_id} data product"}
        return key

    def external(self, namespace: str, name: str, columns) -> tuple[str, str]:
        self.meta[(namespace, name)] = {"columns": columns, "doc": f"{name}: a source outside the mesh"}
        return namespace, name

    def model(self, name: str) -> tuple[str, str]:
        key = (MODEL_NAMESPACE, f"user-segments/{name}")
        self.meta[key] = {"model": MODELS[name], "owner": OWNERS["ai-ml"],
                          "doc": f"{name} {MODELS[name]}, trained nightly by segmentation.train_and_assign"}
        return key

    def run(self, job: str, domain: str, inputs, outputs, *, start: timedelta, end: timedelta,
            lineage: dict | None = None, quality: dict | None = None, state: str = "COMPLETE",
            error: str | None = None, description: str = "") -> None:
        self.runs += 1
        run_id = str(uuid.uuid5(RUN_NAMESPACE, f"{job}|{self.anchor.isoformat()}|{self.runs}"))
        job_facets = {
            "documentation": self._facet("DocumentationJobFacet", description=description),
            "ownership": self._facet("OwnershipJobFacet", owners=[{"name": OWNERS[domain], "type": "MAINTAINER"}]),
            "jobType": self._facet("JobTypeJobFacet", processingType="BATCH", integration="MESHGOV_DEMO",
                                   jobType="JOB"),
        }
        for event_type, offset in (("START", start), (state, end)):
            final = event_type != "START"
            run_facets = {}
            if final and error:
                run_facets["errorMessage"] = self._facet("ErrorMessageRunFacet", message=error,
                                                         programmingLanguage="python")
            self.events.append({
                "eventType": event_type,
                "eventTime": _iso(self.anchor + offset),
                "run": {"runId": run_id, "facets": run_facets},
                "job": {"namespace": NAMESPACE, "name": job, "facets": job_facets if final else {}},
                "inputs": [self._dataset(key, final, quality=(quality or {}).get(key), role="input")
                           for key in inputs],
                "outputs": [self._dataset(key, final and state == "COMPLETE",
                                          lineage=(lineage or {}).get(key), role="output") for key in outputs],
                "producer": PRODUCER,
                "schemaURL": SCHEMA_URL,
            })

    def _dataset(self, key, with_facets: bool, *, lineage=None, quality=None, role: str) -> dict:
        namespace, name = key
        entry: dict = {"namespace": namespace, "name": name}
        if not with_facets:
            return entry
        meta = self.meta[key]
        facets: dict = {"documentation": self._facet("DocumentationDatasetFacet", description=meta["doc"])}
        if "columns" in meta:
            facets["schema"] = self._facet("SchemaDatasetFacet", fields=[
                {"name": c, "type": t, "ordinal_position": i} for i, (c, t) in enumerate(meta["columns"], 1)])
        if "owner" in meta:
            facets["ownership"] = self._facet("OwnershipDatasetFacet", owners=[{"name": meta["owner"]}])
        if "model" in meta:
            facets["datasetType"] = self._facet("DatasetTypeDatasetFacet", datasetType="MODEL")
            facets["version"] = self._facet("DatasetVersionDatasetFacet", datasetVersion=meta["model"])
        if lineage:
            facets["columnLineage"] = self._column_lineage(lineage)
        entry["facets"] = facets
        if role == "input" and quality:
            entry["inputFacets"] = {"dataQualityAssertions": self._facet(
                "DataQualityAssertionsDatasetFacet",
                assertions=[{"assertion": a, "success": ok, **({"column": c} if c else {})} for a, c, ok in quality])}
        if role == "output" and meta.get("file") and Path(meta["file"]).exists():
            import pyarrow.parquet as pq  # only when the seed has written the data

            metadata = pq.read_metadata(meta["file"])
            entry["outputFacets"] = {"outputStatistics": self._facet(
                "OutputStatisticsOutputDatasetFacet", rowCount=metadata.num_rows,
                size=Path(meta["file"]).stat().st_size, fileCount=1)}
        return entry

    def _column_lineage(self, lineage: dict) -> dict:
        def inputs(sources):
            return [{"namespace": ns, "name": name, "field": field,
                     "transformations": [{"type": kind, "subtype": subtype,
                                          "masking": False}]} for (ns, name), field, kind, subtype in sources]

        return self._facet("ColumnLineageDatasetFacet",
                           fields={f: {"inputFields": inputs(s)} for f, s in lineage.items() if f},
                           **({"dataset": inputs(lineage[""])} if "" in lineage else {}))

    def _facet(self, schema: str, **body) -> dict:
        return {"_producer": PRODUCER, "_schemaURL": f"{FACETS}/1-0-0/{schema}.json#/$defs/{schema}", **body}


def _domain_of(product_id: str) -> str:
    return {"customer-profiles": "customer", "customer-consent": "customer", "user-segments": "ai-ml",
            "product-recommendations": "marketing", "newsletter-sends": "marketing",
            "newsletter-interactions": "marketing", "commerce-orders": "commerce",
            "commerce-products": "commerce"}[product_id]


def _iso(moment: datetime) -> str:
    """RFC 3339 with a Z: the anchor is UTC (timezone-aware or naive UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"
