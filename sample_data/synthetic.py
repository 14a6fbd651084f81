"""Synthetic products for scale tests (`--products N`): catalog entries without data.

Each synthetic product is a full ODCS v3.1.0 contract (owners, tags, ~20 classified columns
with descriptions drawn from a per-domain vocabulary, so search has real words to rank) but
no `servers` and no quality rules: there is no data behind them, so the checks engine has
nothing to run and reports nothing for them. The i-th product is the same for every N.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from catalog.ingest_report import IngestReport
from catalog.slugs import slug
from sample_data import contracts, vocab
from sample_data.contracts import Column, Dataset, Product

if TYPE_CHECKING:  # writer processes import this module: they need neither DuckDB nor ingest
    import duckdb

SEED = 7_331
TS = "TIMESTAMP"  # UTC, without zone: fetching TIMESTAMPTZ into Python needs pytz

# (name, logicalType, physicalType, description, classification)
_COMMON = (
    ("created_at", "timestamp", TS, "When the record was created (UTC).", "internal"),
    ("updated_at", "timestamp", TS, "When the record last changed (UTC).", "internal"),
    ("status", "string", "VARCHAR", "Lifecycle status of the record.", "internal"),
    ("region", "string", "VARCHAR", "Sales region the record belongs to.", "internal"),
    ("country_code", "string", "VARCHAR", "ISO 3166-1 alpha-2 country code.", "public"),
    ("source_system", "string", "VARCHAR", "Operational system the record was loaded from.", "internal"),
    ("load_batch_id", "string", "VARCHAR", "Id of the load batch that wrote the record.", "internal"),
    ("is_deleted", "boolean", "BOOLEAN", "Soft-delete marker.", "internal"),
    ("record_version", "integer", "INTEGER", "Optimistic-locking version of the record.", "internal"),
    ("business_unit", "string", "VARCHAR", "Business unit accountable for the record.", "internal"),
    ("valid_from", "date", "DATE", "First day the record is valid.", "internal"),
    ("valid_to", "date", "DATE", "Last day the record is valid; empty while current.", "internal"),
)

_PII = (
    ("contact_email", "string", "VARCHAR", "Email address of the contact person.", "restricted"),
    ("contact_phone", "string", "VARCHAR", "Phone number of the contact person.", "restricted"),
    ("contact_name", "string", "VARCHAR", "Full name of the contact person.", "restricted"),
    ("date_of_birth", "date", "DATE", "Date of birth of the person concerned.", "restricted"),
    ("home_address", "string", "VARCHAR", "Postal address of the person concerned.", "restricted"),
    ("iban", "string", "VARCHAR", "Bank account (IBAN) of the person concerned.", "restricted"),
)

# domain -> (purpose, entities, columns specific to the domain)
_DOMAINS: dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, str, str, str, str], ...]]] = {
    "Finance": ("bookkeeping, cash management and financial reporting",
                ("Invoices", "Payments", "Ledger Entries", "Budget Lines", "Expense Claims"), (
        ("invoice_number", "string", "VARCHAR", "Number printed on the invoice.", "internal"),
        ("net_amount", "number", "DECIMAL(14,2)", "Amount before tax.", "confidential"),
        ("tax_amount", "number", "DECIMAL(14,2)", "Value added tax.", "confidential"),
        ("gross_amount", "number", "DECIMAL(14,2)", "Amount including tax.", "confidential"),
        ("currency", "string", "VARCHAR", "ISO 4217 currency code.", "public"),
        ("cost_center", "string", "VARCHAR", "Cost center charged.", "internal"),
        ("gl_account", "string", "VARCHAR", "General ledger account number.", "internal"),
        ("fiscal_period", "string", "VARCHAR", "Fiscal year and month of booking.", "internal"),
        ("due_date", "date", "DATE", "Date payment is due.", "internal"),
        ("payment_terms", "string", "VARCHAR", "Agreed payment terms such as net 30.", "internal"),
        ("vendor_id", "string", "VARCHAR", "Supplier the amount is owed to.", "internal"),
        ("approval_state", "string", "VARCHAR", "Four-eyes approval state.", "internal"),
    )),
    "Logistics": ("moving goods from warehouses to customers on time",
                  ("Shipments", "Parcels", "Delivery Routes", "Carrier Rates", "Warehouse Moves"), (
        ("tracking_number", "string", "VARCHAR", "Carrier tracking number.", "internal"),
        ("carrier_code", "string", "VARCHAR", "Carrier handling the shipment.", "public"),
        ("warehouse_code", "string", "VARCHAR", "Dispatching warehouse.", "internal"),
        ("weight_kg", "number", "DOUBLE", "Gross weight in kilograms.", "internal"),
        ("volume_m3", "number", "DOUBLE", "Volume in cubic metres.", "internal"),
        ("dispatched_at", "timestamp", TS, "When the goods left the warehouse (UTC).", "internal"),
        ("delivered_at", "timestamp", TS, "When the goods were delivered (UTC).", "internal"),
        ("delivery_window", "string", "VARCHAR", "Promised delivery time slot.", "internal"),
        ("route_id", "string", "VARCHAR", "Planned delivery route.", "internal"),
        ("pallet_count", "integer", "INTEGER", "Number of pallets.", "internal"),
        ("incoterm", "string", "VARCHAR", "Incoterm of the shipment.", "public"),
        ("delay_minutes", "integer", "INTEGER", "Delay against the promised slot.", "internal"),
    )),
    "People": ("workforce planning, payroll and learning",
               ("Employees", "Positions", "Absences", "Trainings", "Payroll Runs"), (
        ("employee_number", "string", "VARCHAR", "Personnel number.", "confidential"),
        ("job_family", "string", "VARCHAR", "Job family of the position.", "internal"),
        ("grade", "string", "VARCHAR", "Salary grade.", "confidential"),
        ("fte", "number", "DOUBLE", "Full-time equivalent of the contract.", "confidential"),
        ("department", "string", "VARCHAR", "Organisational department.", "internal"),
        ("manager_position_id", "string", "VARCHAR", "Position of the line manager.", "internal"),
        ("hire_date", "date", "DATE", "First working day.", "confidential"),
        ("absence_type", "string", "VARCHAR", "Vacation, sick leave or training.", "confidential"),
        ("training_hours", "number", "DOUBLE", "Hours of training completed.", "internal"),
        ("location_code", "string", "VARCHAR", "Office location.", "internal"),
        ("contract_type", "string", "VARCHAR", "Permanent, fixed term or contractor.", "confidential"),
        ("cost_center", "string", "VARCHAR", "Cost center paying the position.", "internal"),
    )),
    "Customer Support": ("resolving customer questions and complaints quickly",
                         ("Tickets", "Chat Sessions", "Call Logs", "Satisfaction Surveys", "Knowledge Articles"), (
        ("ticket_number", "string", "VARCHAR", "Number shown to the customer.", "internal"),
        ("channel", "string", "VARCHAR", "Email, chat, phone or social media.", "public"),
        ("priority", "string", "VARCHAR", "Low, normal, high or urgent.", "internal"),
        ("queue", "string", "VARCHAR", "Support queue handling the case.", "internal"),
        ("first_response_minutes", "integer", "INTEGER", "Minutes until the first answer.", "internal"),
        ("resolution_minutes", "integer", "INTEGER", "Minutes until the case was solved.", "internal"),
        ("csat_score", "integer", "INTEGER", "Customer satisfaction from 1 to 5.", "internal"),
        ("agent_team", "string", "VARCHAR", "Team of the handling agent.", "internal"),
        ("topic", "string", "VARCHAR", "Classified topic of the request.", "internal"),
        ("language", "string", "VARCHAR", "Language of the conversation.", "public"),
        ("reopened", "boolean", "BOOLEAN", "True when the customer reopened the case.", "internal"),
        ("sla_breached", "boolean", "BOOLEAN", "True when the response SLA was missed.", "internal"),
    )),
    "Risk": ("fraud prevention, credit risk and regulatory compliance",
             ("Fraud Alerts", "Credit Scores", "Sanction Screenings", "Risk Assessments", "Audit Findings"), (
        ("risk_score", "number", "DOUBLE", "Model risk score between 0 and 1.", "confidential"),
        ("risk_band", "string", "VARCHAR", "Low, medium or high risk.", "confidential"),
        ("rule_code", "string", "VARCHAR", "Fraud rule that fired.", "confidential"),
        ("alert_state", "string", "VARCHAR", "Open, investigating or closed.", "internal"),
        ("exposure_amount", "number", "DECIMAL(14,2)", "Amount at risk.", "confidential"),
        ("screening_list", "string", "VARCHAR", "Sanctions list screened against.", "internal"),
        ("match_confidence", "number", "DOUBLE", "Confidence of a list match.", "confidential"),
        ("regulation", "string", "VARCHAR", "Regulation the control implements.", "public"),
        ("control_id", "string", "VARCHAR", "Internal control identifier.", "internal"),
        ("finding_severity", "string", "VARCHAR", "Severity of the audit finding.", "internal"),
        ("reviewed_by_team", "string", "VARCHAR", "Team that reviewed the case.", "internal"),
        ("false_positive", "boolean", "BOOLEAN", "True when the alert was a false positive.", "internal"),
    )),
    "Supply Chain": ("planning purchases and stock so shelves stay full",
                     ("Purchase Orders", "Stock Levels", "Supplier Scorecards", "Demand Forecasts", "Goods Receipts"), (
        ("supplier_id", "string", "VARCHAR", "Supplier of the goods.", "internal"),
        ("sku", "string", "VARCHAR", "Stock keeping unit.", "public"),
        ("quantity_on_hand", "integer", "INTEGER", "Units in stock.", "internal"),
        ("reorder_point", "integer", "INTEGER", "Stock level that triggers a purchase.", "internal"),
        ("lead_time_days", "integer", "INTEGER", "Days from order to receipt.", "internal"),
        ("unit_cost", "number", "DECIMAL(12,4)", "Purchase price per unit.", "confidential"),
        ("forecast_units", "number", "DOUBLE", "Forecast demand in units.", "internal"),
        ("forecast_horizon_weeks", "integer", "INTEGER", "Weeks ahead of the forecast.", "internal"),
        ("on_time_rate", "number", "DOUBLE", "Share of deliveries on time.", "internal"),
        ("quality_rejects", "integer", "INTEGER", "Units rejected at goods receipt.", "internal"),
        ("buyer_team", "string", "VARCHAR", "Purchasing team responsible.", "internal"),
        ("incoterm", "string", "VARCHAR", "Incoterm of the purchase.", "public"),
    )),
    "Product Analytics": ("understanding how customers use the shop and the app",
                          ("Page Views", "App Sessions", "Search Queries", "Feature Flags", "Funnel Steps"), (
        ("session_id", "string", "VARCHAR", "Analytics session.", "internal"),
        ("page_path", "string", "VARCHAR", "Path of the page viewed.", "public"),
        ("referrer_domain", "string", "VARCHAR", "Domain the visitor came from.", "internal"),
        ("device_type", "string", "VARCHAR", "Desktop, mobile or tablet.", "public"),
        ("app_version", "string", "VARCHAR", "Version of the mobile app.", "public"),
        ("duration_seconds", "integer", "INTEGER", "Length of the session.", "internal"),
        ("search_term", "string", "VARCHAR", "Normalised search term.", "internal"),
        ("results_count", "integer", "INTEGER", "Number of search results shown.", "internal"),
        ("experiment_key", "string", "VARCHAR", "A/B experiment the visitor is in.", "internal"),
        ("variant", "string", "VARCHAR", "Experiment variant shown.", "internal"),
        ("funnel_step", "string", "VARCHAR", "Step of the checkout funnel.", "internal"),
        ("bounced", "boolean", "BOOLEAN", "True when the visit ended after one page.", "internal"),
    )),
    "Sales": ("winning and growing business customers",
              ("Opportunities", "Quotes", "Accounts", "Contracts", "Territories"), (
        ("account_id", "string", "VARCHAR", "Business customer account.", "internal"),
        ("opportunity_stage", "string", "VARCHAR", "Pipeline stage.", "internal"),
        ("win_probability", "number", "DOUBLE", "Estimated chance to win.", "confidential"),
        ("expected_revenue", "number", "DECIMAL(14,2)", "Weighted revenue of the deal.", "confidential"),
        ("discount_percent", "number", "DOUBLE", "Discount granted on list price.", "confidential"),
        ("territory_code", "string", "VARCHAR", "Sales territory.", "internal"),
        ("industry", "string", "VARCHAR", "Industry of the account.", "public"),
        ("close_date", "date", "DATE", "Expected or actual closing date.", "internal"),
        ("quote_number", "string", "VARCHAR", "Number of the quote document.", "internal"),
        ("contract_term_months", "integer", "INTEGER", "Length of the contract.", "internal"),
        ("renewal_flag", "boolean", "BOOLEAN", "True for renewals.", "internal"),
        ("sales_team", "string", "VARCHAR", "Team owning the account.", "internal"),
    )),
    "IoT": ("monitoring devices, stores and energy use from sensor data",
            ("Sensor Readings", "Device Registry", "Energy Meters", "Fridge Temperatures", "Door Counters"), (
        ("device_id", "string", "VARCHAR", "Registered device.", "internal"),
        ("sensor_type", "string", "VARCHAR", "Kind of sensor.", "public"),
        ("reading_value", "number", "DOUBLE", "Measured value.", "internal"),
        ("reading_unit", "string", "VARCHAR", "Unit of the measured value.", "public"),
        ("firmware_version", "string", "VARCHAR", "Firmware running on the device.", "internal"),
        ("battery_percent", "number", "DOUBLE", "Remaining battery.", "internal"),
        ("store_code", "string", "VARCHAR", "Store the device is installed in.", "internal"),
        ("measured_at", "timestamp", TS, "When the value was measured (UTC).", "internal"),
        ("alarm_raised", "boolean", "BOOLEAN", "True when the reading crossed a threshold.", "internal"),
        ("kwh", "number", "DOUBLE", "Energy used in kilowatt hours.", "internal"),
        ("temperature_c", "number", "DOUBLE", "Temperature in degrees Celsius.", "internal"),
        ("visitor_count", "integer", "INTEGER", "People counted at the door.", "internal"),
    )),
}
_QUALIFIERS = ("Daily", "Curated", "Raw", "Monthly", "Aggregated", "Historical", "Realtime", "Cleansed")
_REGIONS = ("EU", "Nordics", "DACH", "Iberia", "UK", "Benelux", "North America", "Global")
_ROLES = ("Owner", "Data Steward", "Data Engineer")


def _people(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    """n distinct (name, email) pairs for the synthetic domains' staff."""
    first = vocab.FEMALE_FIRST_NAMES + vocab.MALE_FIRST_NAMES
    seen, people = set(), []
    while len(people) < n:
        name = f"{first[rng.integers(len(first))]} {vocab.LAST_NAMES[rng.integers(len(vocab.LAST_NAMES))]}"
        if name not in seen:
            seen.add(name)
            people.append((name, f"{name.lower().replace(' ', '.')}@mesh.example.com"))
    return people


def products(n: int, *, start: int = 0) -> list[Product]:
    """The first n synthetic products (from the `start`-th on: each is the same whatever the range)."""
    rng = np.random.default_rng(SEED)
    domains = list(_DOMAINS)
    staff = _people(rng, 6 * len(domains))
    made = []
    for i in range(start, n):
        d = i % len(domains)  # domains take turns, each with its own six people
        made.append(_product(np.random.default_rng([SEED, i]), i, domains[d], staff[6 * d: 6 * d + 6]))
    return made


def _product(rng: np.random.Generator, i: int, domain: str, crew) -> Product:
    purpose, entities, domain_columns = _DOMAINS[domain]
    entity = entities[rng.integers(len(entities))]
    qualifier = _QUALIFIERS[rng.integers(len(_QUALIFIERS))]
    region = _REGIONS[rng.integers(len(_REGIONS))]
    name = f"{qualifier} {entity} {region} {i + 1}"
    has_pii = i % 5 == 0
    owner, steward, engineer = (crew[j] for j in rng.choice(len(crew), 3, replace=False))
    team = (f"{domain} Data Team", tuple((p[0], p[1], role) for p, role in
                                         zip((owner, steward, engineer), _ROLES, strict=True)))
    dataset = Dataset(slug(entity).replace("-", "_"), f"{qualifier} {entity.lower()} for {region}.",
                      f"One row per {_singular(entity)}", _columns(rng, entity, domain_columns, has_pii))
    return Product(
        name, domain, f"1.{i % 7}.0",
        purpose=f"{qualifier} {entity.lower()} of the {domain} domain for {region}, supporting {purpose}.",
        usage=f"Reporting and analytics on {entity.lower()} in {region}; join on the id column.",
        limitations="Synthetic product for scale tests: catalog entry only, no data behind it.",
        tags=(slug(domain), slug(entity), qualifier.lower(), slug(region), "synthetic",
              *(("pii",) if has_pii else ())),
        datasets=(dataset,), retention=(int(rng.integers(1, 11)), "y"),
        masking="hashed" if has_pii else None, team=team,
    )


def _singular(entity: str) -> str:
    """'Ledger Entries' -> 'ledger entry', 'Invoices' -> 'invoice', 'Device Registry' stays."""
    words = entity.lower().split()
    last = words[-1]
    if last.endswith("ies"):
        last = last[:-3] + "y"
    elif last.endswith("s"):
        last = last[:-1]
    return " ".join([*words[:-1], last])


def _columns(rng: np.random.Generator, entity: str, domain_columns, has_pii: bool) -> tuple[Column, ...]:
    id_name = f"{slug(_singular(entity)).replace('-', '_')}_id"
    cols = [Column(id_name, "string", "VARCHAR", f"Identifier of the {_singular(entity)}.",
                   "internal", required=True, unique=True, key_position=1)]
    width = int(rng.integers(18, 23))
    pool = [c for c in (*domain_columns, *_COMMON) if c[0] != id_name]
    picks = [pool[j] for j in sorted(rng.choice(len(pool), width - 1 - has_pii, replace=False))]
    cols += [Column(n, lt, pt, desc, cls, required=bool(rng.random() < 0.6))
             for n, lt, pt, desc, cls in picks]
    if has_pii:
        n, lt, pt, desc, cls = _PII[rng.integers(len(_PII))]
        cols.append(Column(n, lt, pt, desc, cls, tags=("pii",)))
    return tuple(cols)


def write_all(folder: Path, made: list[Product]) -> list[Path]:
    _remove_generated(folder)
    return _write(folder, made)


def _write(folder: Path, made: list[Product]) -> list[Path]:
    return [contracts.write(contracts.document(p), folder / slug(p.domain) / f"{p.product_id}.odcs.yaml")
            for p in made]


def write_range(folder: Path, start: int, stop: int) -> list[Path]:
    """The contracts of products start..stop-1 written (what one writer process does)."""
    return _write(folder, products(stop, start=start))


# From this many products on, the contract files are written by WRITERS spawned processes
# while the seed goes on with the scenario: making and writing a contract costs ~0.9 ms CPU
# (10k: ~9 s), a writer process ~1.5 s to start.
WRITERS_MIN_PRODUCTS = 2_000
WRITERS = 2
WRITE_CHUNK = 500


@contextlib.contextmanager
def writing(folder: Path, n: int, *, writers: int | None = None) -> Iterator[Callable[[], list[Path]]]:
    """Starts writing the first n synthetic contracts under `folder` and yields `written()`,
    which waits for them and returns their paths in the products' order. Below
    WRITERS_MIN_PRODUCTS (or with writers=0) `written()` writes them itself. The files are
    the same either way; a chunk whose writer failed is written again in this process."""
    _remove_generated(folder)
    writers = WRITERS if writers is None else writers
    if writers < 1 or n < WRITERS_MIN_PRODUCTS:
        yield lambda: write_range(folder, 0, n)
        return
    chunks = [(start, min(start + WRITE_CHUNK, n)) for start in range(0, n, WRITE_CHUNK)]
    with ProcessPoolExecutor(max_workers=writers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(write_range, folder, start, stop) for start, stop in chunks]

        def written() -> list[Path]:
            paths: list[Path] = []
            for (start, stop), future in zip(chunks, futures, strict=True):
                try:
                    paths += future.result()
                except Exception:  # noqa: BLE001 - a broken writer: this process writes the chunk
                    paths += write_range(folder, start, stop)
            return paths

        try:
            yield written
        finally:
            for future in futures:
                future.cancel()


def _remove_generated(folder: Path) -> None:
    """Drop contract files an earlier, larger --products run wrote; files without the
    generator's header are someone else's and stay."""
    for old in folder.rglob("*.odcs.yaml") if folder.is_dir() else ():
        with old.open(encoding="utf-8") as fh:
            if fh.readline() == contracts.HEADER:
                old.unlink()


def seed_synthetic(con: duckdb.DuckDBPyConnection, out: Path, n: int,
                   written: Callable[[], list[Path]] | None = None) -> tuple[IngestReport, str]:
    """Ingest n synthetic contracts written under `out` (by `written`, from `writing(out /
    "contracts", n)`, else here and now); (report, timing note)."""
    started = time.perf_counter()
    if written is None:
        files = write_all(out / "contracts", products(n))
    else:
        files = written()
    ready = time.perf_counter()
    from catalog.ingest import ingest_paths

    report = ingest_paths(con, files, bulk=True)
    done = time.perf_counter()
    n_columns = con.execute("SELECT count(*) FROM columns WHERE contract_id IN (SELECT unnest(?::TEXT[]))",
                            [[a.id for a in report.accepted]]).fetchone()[0]
    return report, (f"synthetic: {n} products, {n_columns:,} columns; written (or waited for) in "
                    f"{ready - started:.1f} s, ingested in {done - ready:.1f} s "
                    f"({(done - ready) / max(n, 1) * 1000:.0f} ms per contract)")


# --- OpenLineage events for scale tests -------------------------------------------------------

OL_PRODUCER = "https://github.com/meshgov/sample_data/synthetic"
OL_SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
_FACET_URL = "https://openlineage.io/spec/facets/1-0-1/{}.json#/$defs/{}"


def lineage_events(n: int, *, jobs: int = 2_000, tables: int = 5_000, bad_at: int | None = None) -> Iterator[dict]:
    """n OpenLineage RunEvents (START, then COMPLETE, per run) of `jobs` jobs over `tables`
    warehouse tables: two inputs and one output each, the output with a schema facet and
    column lineage (six fields, two input fields each). Deterministic. At `bad_at` the event
    has no run id: the one event a backfill must quarantine while the others land."""
    start = datetime(2026, 11, 1, tzinfo=UTC)
    for i in range(n):
        run, state = divmod(i, 2)
        job = run % jobs
        rng = np.random.default_rng([SEED, run])
        sources = [f"dw.sales.table_{int(t)}" for t in rng.integers(0, tables, 2)]
        target = f"dw.marts.table_{(job * 7) % tables}"
        fields = [f"col_{k}" for k in range(6)]
        output = {"namespace": "postgres://warehouse:5432", "name": target}
        if state:
            output["facets"] = {
                "schema": {"_producer": OL_PRODUCER, "_schemaURL": _FACET_URL.format("SchemaDatasetFacet", "SchemaDatasetFacet"),
                           "fields": [{"name": f, "type": "VARCHAR"} for f in fields]},
                "columnLineage": {
                    "_producer": OL_PRODUCER,
                    "_schemaURL": _FACET_URL.format("ColumnLineageDatasetFacet", "ColumnLineageDatasetFacet"),
                    "fields": {f: {"inputFields": [
                        {"namespace": "postgres://warehouse:5432", "name": s, "field": f,
                         "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}]} for s in sources]}
                        for f in fields}},
            }
        event = {
            "eventType": "COMPLETE" if state else "START",
            "eventTime": (start + timedelta(seconds=30 * run + 20 * state)).isoformat().replace("+00:00", "Z"),
            "run": {"runId": str(uuid.UUID(int=(SEED << 64) + run, version=4))},
            "job": {"namespace": "etl", "name": f"job_{job}"},
            "inputs": [{"namespace": "postgres://warehouse:5432", "name": s} for s in sources],
            "outputs": [output],
            "producer": OL_PRODUCER, "schemaURL": OL_SCHEMA_URL,
        }
        if i == bad_at:
            del event["run"]["runId"]
        yield event


def write_lineage_events(path: Path, n: int, **kwargs) -> Path:
    """`lineage_events` as one NDJSON file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for event in lineage_events(n, **kwargs):
            out.write(json.dumps(event, separators=(",", ":")) + "\n")
    return path
