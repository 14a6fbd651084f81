"""Run the checks of some products and persist the run: the facade the CLI and the page use.

Store access is short on purpose (DuckDB lets one process hold the file read-write): the
store is opened once to read the contracts and a snapshot of the catalog for the policies
and to write the `running` row, closed while everything is computed (data checks, contract
SQL and policies, the untrusted SQL in a sandbox process), and opened again only to write
the run with all its results in one short transaction. Opens queue fairly across processes
(catalog.store) and writes retry DuckDB's write conflicts, so concurrent runs lose nothing.

Data-only results (data checks and the PII sample scan) of a dataset whose file and contract
text did not change since the product's last complete run are reused from it (checks.reuse);
`reuse_unchanged=False` (`checks run --no-reuse`) measures everything again.

Runs and results as stored: checks.run_records; read back for pages and the CLI:
checks.stored_results. What stays here (~450 lines) is one sequence, kept together on purpose:
reading the work, planning the steps, running contract checks, PII samples, consent and the
policy pack with one progress count, and writing the run, whose ordering and store windows
are the point of this module.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import os
import random
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from catalog import access, odcs
from catalog.locations import Location
from catalog.store import StoreError, connect, retrying
from checks import compiler, consent, measure, reuse
from checks.result import CheckResult, worst
from checks.run_all import DocumentCache, StoredContract, read_contracts
from checks.run_records import Run, mark_dead_runs_incomplete, new_run_id, persist
from checks.sandbox_process import SandboxWorker
from checks.specs import CheckSpec, contract_specs
from checks.sql_rules import SANDBOX_MEMORY, expand_placeholders, run_sql_rules  # noqa: F401 - part of the runner's API

if TYPE_CHECKING:
    import pandas as pd

PII_SAMPLE_ROWS = 1000
PII_SAMPLE_SEED = 42
CLUSTER_SAMPLE_FROM = 1_000_000  # rows of a Parquet file above which the PII sample reads runs of rows
CLUSTER_RUNS = 20


class UnknownProducts(ValueError):
    """Product ids that are not in the catalog; the message names them."""

    def __init__(self, unknown: list[str], known: list[str]):
        self.unknown = unknown
        hint = f" (known: {', '.join(known[:20])}{' ...' if len(known) > 20 else ''})" if known else \
            " (the catalog has no products: seed or ingest contracts first)"
        super().__init__(f"unknown product id{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}{hint}")


# --- what to check (read from the store) ------------------------------------------------------


@dataclass
class DatasetWork:
    name: str
    physical_name: str
    location: Location | None
    declared: list[dict[str, Any]]            # column_name, classification, pii, tags
    pii_columns: set[str] = field(default_factory=set)


@dataclass
class ContractWork:
    product_id: str
    contract_id: str
    version: str | None
    contract_hash: str | None = None          # of the contract text: stored results are reused only under the same
    specs: list[CheckSpec] = field(default_factory=list)
    datasets: dict[str, DatasetWork] = field(default_factory=dict)
    problem: str | None = None


def _read_work(con: duckdb.DuckDBPyConnection, product_ids: list[str]) -> list[StoredContract]:
    """Contracts (latest revision + the one before), datasets, locations, declared columns:
    queries only (a fixed number for any scope: checks.run_all), so the store is held for as
    short as possible."""
    return read_contracts(con, product_ids)


def _build_work(stored: list[StoredContract], product_ids: list[str],
                documents: DocumentCache | None = None) -> tuple[list[ContractWork], list[CheckResult]]:
    """Parse what _read_work read into the work of a run (no store needed)."""
    documents = documents or DocumentCache()
    work: list[ContractWork] = []
    notes: list[CheckResult] = []
    with_contract = {item.product_id for item in stored}
    for product_id in product_ids:
        if product_id not in with_contract:
            notes.append(_note(product_id, "skipped", "contract", "the product has no contract: nothing to check"))
    for raw in stored:
        item = ContractWork(raw.product_id, raw.contract_id, raw.version, raw.content_hash)
        try:
            model = odcs.parse(documents.load(raw.raw_yaml, raw.cached_document))
            previous = odcs.parse(documents.load(raw.previous_yaml, raw.cached_previous)) \
                if raw.previous_yaml else None
        except odcs.ContractError as exc:
            item.problem = f"stored contract {raw.contract_id} no longer parses: {exc}"
            work.append(item)
            continue
        item.specs = contract_specs(model, product_id=raw.product_id, previous=previous)
        for dataset, physical in raw.datasets:
            # The scanner matches declarations to the data's columns: physical names (run_all).
            item.datasets[dataset] = DatasetWork(
                name=dataset, physical_name=physical, location=raw.locations.get(dataset),
                declared=raw.declared[dataset], pii_columns=set(raw.pii[dataset]))
        work.append(item)
    return work, notes


def _note(product_id: str, status: str, what: str, reason: str) -> CheckResult:
    now = compiler.now_utc()
    return CheckResult(check_id=f"{product_id}/{what}", kind="contract", target=product_id, status=status,  # type: ignore[arg-type]
                       reason=reason, product_id=product_id, started_at=now, finished_at=now)


def known_products(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in con.execute("SELECT product_id FROM products ORDER BY product_id").fetchall()]


def resolve_products(con: duckdb.DuckDBPyConnection, product_ids: list[str] | None) -> list[str]:
    known = known_products(con)
    if product_ids is None:
        return known
    wanted = list(dict.fromkeys(product_ids))
    unknown = [p for p in wanted if p not in known]
    if unknown:
        raise UnknownProducts(unknown, known)
    return wanted


# --- the run -------------------------------------------------------------------------------------


class _Progress:
    """Steps done of the steps planned, and the results they gave: a step (one PII scan, the
    policy pack) can give many results, so the two counts differ and both are reported."""

    def __init__(self, total: int, callback: Callable[[dict], None] | None) -> None:
        self.total, self.done, self.results, self.callback = total, 0, 0, callback

    def step(self, check_id: str, status: str, results: int = 1) -> None:
        self.done += 1
        self.results += results
        if self.callback:
            self.callback({"done": self.done, "total": self.total, "results": self.results,
                           "check_id": check_id, "status": status})


def run_checks(db_path: str | Path, *, product_ids: list[str] | None = None, triggered_by: str | None = None,
               user: access.User | None = None, progress: Callable[[dict], None] | None = None,
               timeout_s: float = 30.0, now: dt.datetime | None = None, plan: compiler.Plan | None = None,
               with_policies: bool = True, reuse_unchanged: bool = True,
               worker: SandboxWorker | None = None) -> Run:
    """Check `product_ids` (None = all), persist the run, return it.

    With `user`, the run is refused (access.PermissionDenied, nothing written) unless the
    user's roles allow `run_checks`, is recorded as triggered by them, and is written to the
    audit trail in the same transaction as its results. Without `user`, `triggered_by`
    names the caller (trusted callers only: tests, the bench).

    `reuse_unchanged`: data-only results of datasets whose file and contract text are unchanged
    since the product's last complete run are taken from that run, marked as reused.

    `worker`: a sandbox process the caller started (and closes) ahead of the run, so that its
    start overlaps the caller's own work (the CLI starts it before its imports); by default
    the run starts one itself, before it opens the store.

    Raises UnknownProducts for ids not in the catalog and StoreError when the DB is missing
    or stays locked; a check that cannot run becomes an `error`/`skipped` result instead.
    """
    if user is not None:
        access.require(user, "run_checks", target="all products" if product_ids is None else ",".join(product_ids))
        triggered_by = triggered_by or user.email
    if not triggered_by:
        raise TypeError("run_checks needs user= (who runs it, checked against their roles) or triggered_by=")
    path = Path(db_path)
    if not path.exists():
        raise StoreError(f"{path} does not exist; create it with `python -m sample_data seed --db {path}`")
    run_id = new_run_id()
    started = compiler.now_utc()
    own_worker = worker is None
    worker = worker or SandboxWorker(memory_limit=SANDBOX_MEMORY)
    if with_policies:
        # The policy pack always runs in the sandbox process: start it now, so its ~1 s of
        # imports overlaps reading the store, the PII samples and the data checks.
        worker.start()
    # 1. Read what to check (and the catalog the policies judge), mark the run as running.
    snapshot = None
    try:
        with connect(path) as con:
            mark_dead_runs_incomplete(con)
            scope = resolve_products(con, product_ids)
            stored = _read_work(con, scope)
            prior = reuse.load_prior(con, scope) if reuse_unchanged else None
            samples = _start_pii_samples(stored, prior)
            snapshot = _policy_snapshot(con) if with_policies else None
            consent_plan = _consent_plan(con, scope)
            from checks import model_checks  # model cards and bias audits (issue 11)

            models = model_checks.load_work(con, None if product_ids is None else scope)

            def start() -> None:
                con.execute(
                    "INSERT INTO check_runs (run_id, started_at, state, triggered_by, scope, products, pid, host) "
                    "VALUES (?, ?, 'running', ?, ?, ?, ?, ?)",
                    [run_id, started, triggered_by, "all" if product_ids is None else ",".join(scope),
                     None if product_ids is None else scope, os.getpid(), socket.gethostname()])

            retrying(start)
    except BaseException:
        if hasattr(snapshot, "close"):
            snapshot.close()
        if own_worker:
            worker.kill()  # nothing was sent to it yet: no need to wait for it to finish starting
        raise
    run = Run(run_id, "skipped", [], "running", started, None, triggered_by,
              None if product_ids is None else scope)
    pack: _PolicyPack | None = None
    try:
        # 2. Compute with the store closed (parsing the contracts needs no store either).
        if snapshot is not None:
            # The policies read only the snapshot: they run in the sandbox process while this
            # process samples and measures the data (its own queries wait in the kernel).
            pack = _PolicyPack(snapshot, None if product_ids is None else scope, timeout_s, worker)
        documents = DocumentCache()
        work, run.results = _build_work(stored, scope, documents)
        steps = sum(len(w.specs) + len(w.datasets) + (1 if w.problem else 0) for w in work) + (1 if with_policies else 0)
        steps += consent_plan.steps if consent_plan else 0
        tracker = _Progress(steps, progress)
        if any(s.metric == "sql" and not s.problem for w in work for s in w.specs):
            worker.start()  # its ~1 s of imports overlaps the data checks
        for item in work:
            run.results += _check_contract(item, tracker, timeout_s=timeout_s, now=now, plan=plan,
                                           worker=worker, prior=prior, samples=samples,
                                           before_sandbox=pack.wait if pack is not None else None)
        if consent_plan:
            run.results += consent.run_plan(consent_plan, timeout_s=timeout_s, step=tracker.step)
        run.results += model_checks.run(models, timeout_s=timeout_s)
        if pack is not None:
            found = pack.wait()
            tracker.step("policies", worst(r.status for r in found), len(found))
            run.results += found
        # 3. Write the run and its results in one short transaction.
        _stamp(run, triggered_by)
        run.state = "complete"
        run.status = worst(r.status for r in run.results)
        with connect(path) as con:
            persist(con, run, actor=user)
            try:
                documents.save(con)  # texts parsed for the first time: the next run reads their JSON
            except Exception:  # noqa: BLE001 - a cache: the run is stored, the next one parses again
                pass
    except BaseException as exc:
        # Keep what was measured and say why the run stopped; then let the caller see it.
        run.state = "incomplete"
        _stamp(run, triggered_by)
        run.status = worst(r.status for r in run.results)
        try:
            with connect(path) as con:
                persist(con, run, note=f"run stopped by {type(exc).__name__}: {exc}"[:500], actor=user)
        except Exception:  # noqa: BLE001 - the original error matters more
            pass
        raise
    finally:
        if pack is None and hasattr(snapshot, "close"):
            snapshot.close()  # the run stopped before its policy pack started
        if pack is not None and not pack.done:
            worker.kill()  # the run stopped early: stop the policies it no longer waits for
        if own_worker:
            worker.close()
    return run


def _consent_plan(con: duckdb.DuckDBPyConnection, scope: list[str]):
    """Consent requirements of the products in scope (checks.consent), read while the store is open."""
    try:
        return consent.plan(con, scope)
    except duckdb.Error as exc:
        return consent.ConsentPlan(None, [], [CheckResult(
            check_id="consent:declarations", kind="consent", target="catalog", status="error",
            reason=f"cannot read the consent declarations: {exc}", started_at=compiler.now_utc(),
            finished_at=compiler.now_utc())])


def _stamp(run: Run, triggered_by: str) -> None:
    run.finished_at = compiler.now_utc()
    for result in run.results:
        result.run_id = run.run_id
        result.triggered_by = triggered_by


def _policy_snapshot(con: duckdb.DuckDBPyConnection) -> Any:
    """The catalog tables the policies read, taken while the store is open (or why not)."""
    try:
        from checks import policies
    except ImportError as exc:
        return f"the policy engine is not available: {exc}"
    # A cursor of its own: the snapshot must not inherit a half-read result.
    cursor = con.cursor()
    try:
        return policies.catalog_snapshot(cursor)
    except Exception as exc:  # noqa: BLE001 - a broken snapshot must not lose the run
        return f"policy pack failed: the catalog snapshot failed: {type(exc).__name__}: {exc}"
    finally:
        cursor.close()


class _PolicyPack:
    """The policy pack of a run, evaluated in a thread of its own over the catalog snapshot.

    The thread only talks to the sandbox process (and waits on its pipe), so the pack costs
    the run no time of its own: it is done by the time the data checks are. `wait()` returns
    its results; the run's sandbox process serves one session at a time, so contract SQL
    rules call `wait()` before they use it."""

    def __init__(self, snapshot: Any, product_ids: list[str] | None, timeout_s: float,
                 worker: SandboxWorker) -> None:
        self._results: list[CheckResult] | None = None
        self._args = (snapshot, product_ids, timeout_s, worker)
        self._thread = threading.Thread(target=self._run, name="meshgov-policy-pack", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._results = _policy_results(*self._args)
        finally:
            close = getattr(self._args[0], "close", None)
            if close is not None:
                close()  # the snapshot's temporary file

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def wait(self) -> list[CheckResult]:
        self._thread.join()
        if self._results is None:  # the thread died past _policy_results' own error handling
            now = compiler.now_utc()
            self._results = [CheckResult(check_id="policies", kind="policy", target="catalog", status="error",
                                         reason="policy pack failed: its thread stopped without results",
                                         started_at=now, finished_at=now)]
        return self._results


def _policy_results(snapshot: Any, product_ids: list[str] | None, timeout_s: float,
                    worker: SandboxWorker | None = None) -> list[CheckResult]:
    found: list[CheckResult] = []
    if not isinstance(snapshot, str):
        from checks import policies

        try:
            found = policies.run_policies(None, snapshot=snapshot, product_ids=product_ids,
                                          timeout_s=timeout_s, memory_limit=SANDBOX_MEMORY, worker=worker)
        except Exception as exc:  # noqa: BLE001 - a broken pack must not lose the run
            snapshot = f"policy pack failed: {type(exc).__name__}: {exc}"
    if isinstance(snapshot, str):
        now = compiler.now_utc()
        found = [CheckResult(check_id="policies", kind="policy", target="catalog", status="error",
                             reason=snapshot, started_at=now, finished_at=now)]
    return found


def _check_contract(item: ContractWork, tracker: _Progress, *, timeout_s: float,
                    now: dt.datetime | None, plan: compiler.Plan | None,
                    worker: SandboxWorker | None = None,
                    prior: reuse.PriorResults | None = None,
                    samples: dict[tuple[str, str], tuple[str | None, concurrent.futures.Future]] | None = None,
                    before_sandbox: Callable[[], Any] | None = None) -> list[CheckResult]:
    results: list[CheckResult] = []
    if item.problem:
        result = _note(item.product_id, "error", f"contract/{item.contract_id}", item.problem)
        tracker.step(result.check_id, result.status)
        return [result]

    def emit(result: CheckResult) -> None:
        results.append(result)
        tracker.step(result.check_id, result.status)

    for spec in item.specs:
        if spec.metric == "breaking_changes":
            emit(compiler.compat_result(spec))
        elif spec.problem or spec.metric in ("text", "custom") or (
                spec.metric not in compiler.DATA_METRICS and spec.metric != "sql"):
            emit(compiler.not_run_result(spec))
    for name, dataset in item.datasets.items():
        pii_results = _scan_pii(item, dataset, prior, (samples or {}).get((item.product_id, name)))
        results.extend(pii_results)
        tracker.step(f"pii:{item.product_id}/{name}", worst(r.status for r in pii_results), len(pii_results))
        flagged = {r.column_name for r in pii_results if r.status in ("failed", "warning") and r.column_name}
        data_specs = [s for s in item.specs if s.dataset == name and not s.problem
                      and s.metric in compiler.DATA_METRICS]
        target = measure.DatasetTarget(item.product_id, name, dataset.location, dataset.pii_columns,
                                        contract_hash=item.contract_hash, prior=prior)
        location = dataset.location
        if data_specs and location is not None and not location.refused and location.engine != "duckdb":
            # Pushed down to PostgreSQL / Spark: the same compiled checks, run there.
            from checks.engines import run_dataset_on_engine
            run_dataset_on_engine(data_specs, target, timeout_s=timeout_s, now=now, on_result=emit,
                                  extra_mask=flagged)
        else:
            measure.run_dataset(data_specs, target, timeout_s=timeout_s, plan=plan, now=now, on_result=emit,
                                 extra_mask=flagged)
    orphans = [s for s in item.specs if s.metric in compiler.DATA_METRICS and not s.problem
               and s.dataset not in item.datasets]
    for spec in orphans:
        emit(_orphan(spec))
    sql_specs = [s for s in item.specs if s.metric == "sql" and not s.problem]
    pushed = {n for n, d in item.datasets.items() if d.location and d.location.engine != "duckdb"}
    if pushed:  # rules for a dataset on PostgreSQL / Spark are written for, and run on, that engine
        from checks.engines import run_sql_rules_on_engine
        for name in sorted(pushed):
            for result in run_sql_rules_on_engine([s for s in sql_specs if s.dataset == name],
                                                  item.datasets[name], timeout_s=timeout_s):
                emit(result)
        sql_specs = [s for s in sql_specs if s.dataset not in pushed]
    if sql_specs:
        if before_sandbox is not None:
            before_sandbox()  # the policy pack holds the sandbox process until it is done
        for result in run_sql_rules(sql_specs, item.datasets, timeout_s=timeout_s, worker=worker):
            emit(result)
    return results


def _orphan(spec: CheckSpec) -> CheckResult:
    now = compiler.now_utc()
    return CheckResult(check_id=spec.check_id, kind=spec.kind, target=spec.target, status="error",
                       reason=f"dataset {spec.dataset} is not in the catalog for this contract",
                       product_id=spec.product_id, dataset=spec.dataset, contract_id=spec.contract_id,
                       contract_version=spec.contract_version, started_at=now, finished_at=now)


# --- PII sample --------------------------------------------------------------------------------


def sample_rows(location: Location, *, rows: int = PII_SAMPLE_ROWS,
                seed: int = PII_SAMPLE_SEED) -> dict[str, list] | pd.DataFrame:
    """A reproducible sample, as column -> values (a DataFrame from an engine that is not
    DuckDB; the PII scanner reads both): reservoir sampling with a fixed seed on one thread (DuckDB's
    sample is repeatable for a seed only single-threaded).

    A Parquet file of more than CLUSTER_SAMPLE_FROM rows is sampled in runs of consecutive
    rows instead (CLUSTER_RUNS seeded positions, read by row number, so only those row
    groups are decoded): the reservoir reads every row of every column (1.7 s CPU at 10M rows,
    more than any check of the suite but two), the runs 0.2 s. The scanner judges shares of
    values, which runs of rows spread over the file estimate as well for a column that is
    not sorted by what it holds."""
    if location.engine != "duckdb":  # sampled where the data lives (checks.engines)
        from checks.engines import sample_frame
        return sample_frame(location, rows=rows, seed=seed)
    # The runs of rows are the same on any number of threads (fixed row numbers, ordered): both
    # cores read them (0.12 vs 0.20 s at 10M rows). The reservoir below needs one.
    with compiler.trusted_connection(threads=None if location.kind == "parquet" else 1) as con:
        setup, relation = compiler.relation_sql(location)
        for statement in setup:
            con.execute(statement)
        if location.kind == "parquet":
            total = con.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
            if total > CLUSTER_SAMPLE_FROM:
                length = max(1, int(rows) // CLUSTER_RUNS)
                starts = sorted(random.Random(seed).sample(range(total // length), CLUSTER_RUNS))
                runs = " OR ".join(f"file_row_number BETWEEN {start * length} AND {start * length + length - 1}"
                                   for start in starts)
                try:
                    return _columns(con.execute(
                        f"SELECT * EXCLUDE (file_row_number) FROM read_parquet({compiler.sql_literal(location.path)}, "
                        f"file_row_number = true) WHERE {runs} ORDER BY file_row_number"))
                except duckdb.Error:
                    pass  # a column named file_row_number, say: the reservoir below reads it as it is
            con.execute("SET threads = 1")
        return _columns(con.execute(f"SELECT * FROM {relation} USING SAMPLE {int(rows)} ROWS (reservoir, {int(seed)})"))


def _columns(cursor: duckdb.DuckDBPyConnection) -> dict[str, list]:
    """A query's answer as column -> values (no pandas: a run never loads it)."""
    names = [d[0] for d in cursor.description]
    rows = cursor.fetchall()
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}


PREFETCHED_SAMPLES = 4  # a run of more datasets samples each when it gets to it (memory)


def _start_pii_samples(stored: list[StoredContract], prior: reuse.PriorResults | None
                       ) -> dict[tuple[str, str], tuple[str | None, concurrent.futures.Future]]:
    """(product id, dataset) -> (data fingerprint, the PII sample `_scan_pii` will take, started
    now in a thread):
    a run of a product's checks read the store, parsed its contract and sampled only then
    (~0.3 s at 10M rows, on one DuckDB thread, before the first check's query). Only for a run
    of at most PREFETCHED_SAMPLES local datasets, and only where the stored PII results cannot
    be reused (the rule `_scan_pii` applies)."""
    wanted = []
    for raw in stored:
        for dataset, _physical in raw.datasets:
            location = raw.locations.get(dataset)
            if location is None or location.refused or location.engine != "duckdb" or (
                    location.kind != "duckdb" and not Path(location.path).is_file()):
                continue
            fingerprint, stored = _prior_pii(prior, raw.product_id, dataset, location, raw.content_hash)
            if stored:
                continue
            wanted.append(((raw.product_id, dataset), location, fingerprint))
    if not wanted or len(wanted) > PREFETCHED_SAMPLES:
        return {}
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="pii-sample")
    try:  # each with the data's fingerprint, taken before the sample reads the data
        return {key: (fingerprint, pool.submit(sample_rows, location)) for key, location, fingerprint in wanted}
    finally:
        pool.shutdown(wait=False)  # the thread ends after the last sample; nobody joins it here


def _prior_pii(prior: reuse.PriorResults | None, product_id: str, dataset: str, location: Location | None,
               contract_hash: str | None) -> tuple[str | None, list | None]:
    """(the data's fingerprint, the stored PII results a scan of it may reuse, or None)."""
    fingerprint = reuse.data_fingerprint(location) if contract_hash else None
    stored = prior.pii_of(product_id, dataset, fingerprint=fingerprint,
                          contract_hash=contract_hash) if prior is not None else None
    return fingerprint, stored


def _scan_pii(item: ContractWork, dataset: DatasetWork, prior: reuse.PriorResults | None = None,
              started: tuple[str | None, concurrent.futures.Future] | None = None) -> list[CheckResult]:
    """`started`: the fingerprint and sample `_start_pii_samples` started for this dataset, if it did."""
    check_id = f"pii:{item.product_id}/{dataset.name}"
    now = compiler.now_utc()
    # A started sample was started because the stored results could not be reused.
    fingerprint, stored = (started[0], None) if started is not None else \
        _prior_pii(prior, item.product_id, dataset.name, dataset.location, item.contract_hash)
    if stored:
        return [reuse.reused_result(s, CheckResult(
            check_id=stored_id, kind="pii", target=".".join(filter(None, (
                item.product_id, dataset.name, _pii_column(stored_id, check_id)))), status="passed",
            product_id=item.product_id, dataset=dataset.name, column_name=_pii_column(stored_id, check_id),
            contract_id=item.contract_id, contract_version=item.version, started_at=now,
            finished_at=compiler.now_utc())) for stored_id, s in stored]

    def single(status: str, reason: str) -> list[CheckResult]:
        return [CheckResult(check_id=check_id, kind="pii", target=f"{item.product_id}.{dataset.name}",
                            status=status, reason=reason, product_id=item.product_id,  # type: ignore[arg-type]
                            dataset=dataset.name, contract_id=item.contract_id,
                            contract_version=item.version, started_at=now, finished_at=now)]

    if dataset.location is None:
        return single("skipped", f"no local server for dataset {dataset.name}: no data to sample")
    if dataset.location.refused:
        return single("error", dataset.location.refused)
    if dataset.location.engine == "duckdb" and dataset.location.kind != "duckdb" \
            and not Path(dataset.location.path).is_file():
        return single("error", f"data file {dataset.location.path} does not exist: nothing to sample")
    try:
        from checks import pii
    except ImportError as exc:
        return single("error", f"the PII scanner is not available: {exc}")
    try:
        rows = started[1].result() if started is not None else sample_rows(dataset.location)
        found = pii.scan(rows, dataset.declared, product_id=item.product_id, dataset=dataset.name,
                         contract_id=item.contract_id, contract_version=item.version)
        finished = compiler.now_utc()
        for result in found:  # pii.scan judges a sample; when it was taken is the runner's to say
            result.started_at = result.started_at or now
            result.finished_at = result.finished_at or finished
            reuse.mark(result, fingerprint=fingerprint, contract_hash=item.contract_hash)
        return found
    except Exception as exc:  # noqa: BLE001 - one unreadable dataset must not stop the run
        return single("error", f"PII scan failed: {type(exc).__name__}: {str(exc).splitlines()[0][:300]}")


def _pii_column(stored_id: str, dataset_check_id: str) -> str | None:
    """The column of a stored per-column PII result id (`pii:product/dataset/column`)."""
    return stored_id.removeprefix(dataset_check_id + "/") if stored_id.startswith(dataset_check_id + "/") else None
