"""Ingest files and folders into the store: one transaction per file, a report for all.

A rejected file writes nothing; an identical re-ingest is a no-op; a changed contract with
the same id becomes a new revision (older revisions are kept with their raw text).

About 450 lines: it is the one path from a file to stored rows (read, check, parse,
store, one outcome per file); what stands alone lives beside it (catalog.ingest_batch,
catalog.ingest_pool, catalog.ingest_report, catalog.contract_rows).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import yaml

from catalog import access, audit, odcs, product_summary, search, store
from catalog.contract_rows import (
    DETAIL_TABLES,  # noqa: F401 - read by ingest_batch through here before; kept importable
    PRODUCT_UPSERT,  # noqa: F401
    CheckedContract,
    PreparedContract,
    _first_schema_description,
    _older_version_warning,
    _write_contract_details,
    contract_rows,
    document_json,
)
from catalog.ingest_report import Accepted, IngestReport, Rejected, Warning_  # noqa: F401 - the report is part of ingest's API
from catalog.store import transaction

CONTRACT_SUFFIXES = {".yaml", ".yml"}
LINEAGE_SUFFIXES = {".json", ".ndjson", ".jsonl"}
# Bytes per contract file; lineage files have their own (catalog.openlineage.MAX_FILE_BYTES).
MAX_CONTRACT_BYTES = 2 * 1024 * 1024  # YAML parses at ~0.15 MB/s here: bounds the time too
MODEL_CARD_SUFFIXES = {".md"}  # Hugging Face model cards (catalog.modelcards)
INGESTIBLE = CONTRACT_SUFFIXES | LINEAGE_SUFFIXES | MODEL_CARD_SUFFIXES


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[Rejected]]:
    """Files named directly are all tried; folders contribute their ingestible files."""
    files: list[Path] = []
    missing: list[Rejected] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in INGESTIBLE
                            and (p.suffix.lower() not in MODEL_CARD_SUFFIXES or _card_like(p)))
        elif path.is_file():
            files.append(path)
        else:
            missing.append(Rejected(str(path), "no such file or directory"))
    return files, missing


def _acting(user: access.User | None, actor: str | None) -> access.User:
    """Who ingests: the page's user, else a command-line run as `actor` or the OS user.
    Raises PermissionDenied unless they may ingest."""
    return access.require(user or access.cli_user(actor), "ingest")


# Contracts stored per write batch: one transaction, a few statements per table for all of
# them (per-file transactions of ~25 statements each cost ~40 ms a contract on these machines).
BATCH_FILES = 500


def ingest_paths(con: duckdb.DuckDBPyConnection, paths: Iterable[str | Path], *, actor: str | None = None,
                 user: access.User | None = None, bulk: bool = False, workers: int | None = None) -> IngestReport:
    """Each file has its own outcome (a rejected file writes nothing), but the writes of the
    accepted contracts are batched: up to BATCH_FILES contracts share one transaction, and
    the search index is refreshed once per batch. Should a batch fail to write, it is rolled
    back and its files stored one transaction each, so one bad write costs only its file.
    With each new revision its parsed document goes in (contract_documents), so a check run
    does not parse it again.

    `bulk`: for loads of thousands of contracts, rebuild the search index once at the end
    instead of per batch; until then the new products are not searchable. A bulk load of at
    least ingest_pool.POOL_MIN_FILES contract files is also read, loaded, validated and parsed
    in `workers` processes (default: one per core; 0 or 1: none) while this one writes."""
    from catalog import ingest_pool

    user = _acting(user, actor)
    files, missing = expand_paths(paths)
    report = IngestReport(rejected=missing)
    stored_in_batch: dict[str, Accepted] = {}
    queue: list[PreparedContract] = []

    def flush() -> None:
        for one in store_contracts(con, queue, user=user, index=not bulk):
            report.extend(one)
            report.warnings += _same_id_in_batch(one, stored_in_batch)
        queue.clear()

    with store.checkpoint_once(con, large=bulk and len(files) >= ingest_pool.POOL_MIN_FILES), \
            ingest_pool.checked_in_workers(files, check=prepare_contract_file, suffixes=CONTRACT_SUFFIXES,
                                           workers=workers if bulk else 0) as prepared_by_worker:
        for path in files:
            prepared = prepared_by_worker(path)
            if prepared is None:
                prepared = prepare_file(con, path, user=user, index=not bulk)
            if isinstance(prepared, PreparedContract):
                queue.append(prepared)
                if len(queue) >= BATCH_FILES:
                    flush()
                continue
            flush()  # files keep their order: a lineage file may name what the contracts before it declared
            report.extend(prepared)
            report.warnings += _same_id_in_batch(prepared, stored_in_batch)
    flush()
    if bulk and report.accepted:
        with transaction(con):
            search.reindex(con)
    return report


def _same_id_in_batch(one: IngestReport, stored_in_batch: dict[str, Accepted]) -> list[Warning_]:
    """Two files of one batch with the same contract id and different content: the later one
    silently became the newest revision. Say so, naming both files and versions."""
    warnings = []
    for item in one.accepted:
        if item.kind != "contract":
            continue
        earlier = stored_in_batch.get(item.id)
        if earlier is not None and not item.unchanged and earlier.file != item.file:
            warnings.append(Warning_(item.file, (
                f"contract {item.id!r} (version {item.version or '?'}) is also in {earlier.file} "
                f"(version {earlier.version or '?'}) in this batch with different content; "
                f"{item.file} was stored last, so it is the newest revision")))
        if not item.unchanged or item.id not in stored_in_batch:
            stored_in_batch[item.id] = item
    return warnings




def ingest_file(con: duckdb.DuckDBPyConnection, path: Path, *, actor: str | None = None,
                user: access.User | None = None, index: bool = True) -> IngestReport:
    """Never raises for a bad file: whatever one producer sends, the batch goes on."""
    user = _acting(user, actor)
    prepared = prepare_file(con, path, user=user, index=index)
    if isinstance(prepared, PreparedContract):
        return store_contracts(con, [prepared], user=user, index=index)[0]
    return prepared


def prepare_file(con: duckdb.DuckDBPyConnection, path: Path, *, user: access.User,
                 index: bool = True) -> IngestReport | PreparedContract:
    """A contract comes back prepared (nothing written yet); any other file is ingested here
    and its report returned. Never raises for a bad file."""
    try:
        return _ingest_file(con, path, user=user, index=index)
    except Exception as exc:  # noqa: BLE001 - a bug must not stop the batch; its transaction rolled back
        return _internal_error(str(path), exc)


def _internal_error(name: str, exc: Exception) -> IngestReport:
    return IngestReport(rejected=[Rejected(
        name, f"internal error while ingesting ({type(exc).__name__}: {str(exc)[:300]}); "
              "nothing was written — please report this file")])


def _ingest_file(con: duckdb.DuckDBPyConnection, path: Path, *, user: access.User,
                 index: bool = True) -> IngestReport | PreparedContract:
    report = IngestReport()
    name = str(path)
    text = read_text(path)
    if isinstance(text, IngestReport):
        return text
    suffix = path.suffix.lower()
    if suffix in LINEAGE_SUFFIXES and _looks_like_lineage(text):
        from catalog import openlineage  # lineage ingest lives with the lineage graph

        report = openlineage.ingest_text(con, text, source=name, actor=user.email)
        new_events = sum(not a.unchanged for a in report.accepted)
        if new_events:  # one audit row per file: events are many and each has its own transaction
            audit.record(con, actor=user, action="ingest", target=f"file:{name}",
                         after={"lineage_events": new_events, "rejected": len(report.rejected)})
        return report
    if suffix in MODEL_CARD_SUFFIXES:
        return _ingest_model_card(con, text, source=name, user=user)
    if suffix not in CONTRACT_SUFFIXES | {".json"}:
        report.rejected.append(Rejected(name, f"unsupported file type {suffix or '(none)'}: "
                                              "expected an ODCS contract (.yaml), OpenLineage events (.json/.ndjson) or a model card (.md)"))
        return report
    try:
        return prepare_contract_text(text, source=name)
    except odcs.ContractError as exc:
        report.rejected.append(Rejected(name, str(exc)))
        return report


def read_text(path: Path) -> str | IngestReport:
    """The file's text, or the report rejecting it (too big, unreadable, not UTF-8)."""
    name = str(path)
    too_big = _over_size_limit(path)
    if too_big:
        return IngestReport(rejected=[Rejected(name, too_big)])
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return IngestReport(rejected=[Rejected(name, f"not UTF-8 text (byte {exc.start}): not a contract or event file")])
    except OSError as exc:
        return IngestReport(rejected=[Rejected(name, f"cannot read: {exc.strerror}")])


def prepare_contract_file(path: Path) -> IngestReport | PreparedContract:
    """A .yaml/.yml contract file read, loaded, validated and parsed into its rows, with no
    store at hand (what a bulk ingest's worker processes do, see catalog.ingest_pool); its
    report when rejected. Same steps and messages as `prepare_file` for such a file. Never
    raises for a bad file."""
    try:
        text = read_text(path)
        if isinstance(text, IngestReport):
            return text
        try:
            return prepare_contract_text(text, source=str(path))
        except odcs.ContractError as exc:
            return IngestReport(rejected=[Rejected(str(path), str(exc))])
    except Exception as exc:  # noqa: BLE001 - a bug must not stop the batch
        return _internal_error(str(path), exc)


def _over_size_limit(path: Path) -> str | None:
    """The reason a file is refused unread for its size, naming the limit; None when it fits."""
    from catalog import openlineage
    try:
        size = path.stat().st_size
    except OSError:
        return None  # reading it will say why
    if path.suffix.lower() in LINEAGE_SUFFIXES:
        return openlineage.file_too_big(size) if size > openlineage.MAX_FILE_BYTES else None
    if size > MAX_CONTRACT_BYTES:
        return (f"file of {size:,} bytes is larger than the limit of {MAX_CONTRACT_BYTES:,} bytes "
                "per contract file (MAX_CONTRACT_BYTES)")
    return None
def _card_like(path: Path) -> bool:
    """In a folder, a .md file counts as a model card only with front matter (READMEs are skipped)."""
    from catalog import modelcards

    return modelcards.has_front_matter(path)


def _ingest_model_card(con: duckdb.DuckDBPyConnection, text: str, *, source: str, user: access.User) -> IngestReport:
    from catalog import modelcards

    try:
        outcome = modelcards.store_card(con, text, source=source, actor=user)
    except modelcards.CardError as exc:
        return IngestReport(rejected=[Rejected(source, str(exc))])
    return IngestReport(accepted=[Accepted(source, outcome.model_id, outcome.version, outcome.unchanged,
                                           kind="model_card")],
                        warnings=[Warning_(source, w) for w in outcome.warnings])


def _looks_like_lineage(text: str) -> bool:
    """An event names its time or type, or has both a run and a job; a JSON Schema file
    (which mentions "run" among its properties) does not count."""
    head = text.lstrip()[:4000]
    if not head.startswith(("{", "[")) or '"$schema"' in head:
        return False
    return any(k in head for k in ('"eventType"', '"eventTime"')) or ('"run"' in head and '"job"' in head)


def ingest_contract_text(con: duckdb.DuckDBPyConnection, text: str, *, source: str,
                         actor: str | None = None, user: access.User | None = None,
                         index: bool = True) -> tuple[Accepted, list[str]]:
    """Validate, parse and store one contract; raise ContractError without writing on fault.
    A new revision and its audit row (before/after revision and hash) commit together."""
    user = _acting(user, actor)
    prepared = prepare_contract_text(text, source=source)
    return _store_prepared(con, prepared, user=user, index=index)


def prepare_contract_text(text: str, *, source: str) -> PreparedContract:
    """Load, validate and parse one contract (no database work); raise ContractError on fault."""
    return parse_checked(check_contract_text(text, source=source))


def check_contract_text(text: str, *, source: str) -> CheckedContract:
    """Load and validate one contract (the costly, store-free part of preparing it)."""
    try:
        document = odcs.load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise odcs.ContractError(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from exc
    validation = odcs.validate(document)
    return CheckedContract(source, text, document, validation)


def parse_checked(checked: CheckedContract) -> PreparedContract:
    """Parse a validated contract into the model and its rows; raise ContractError on fault."""
    contract = odcs.parse(checked.document)
    product_id, product_name = odcs.product_identity(contract)
    as_json = document_json(checked.document)
    return PreparedContract(
        checked.source, checked.text, checked.validation, product_id, product_name,
        hashlib.sha256(checked.text.encode()).hexdigest(), contract.id, contract.version, contract.name,
        contract.status, contract_rows(contract, product_id, product_name), as_json,
        document=checked.document if as_json is None else None, model=contract)


def _store_prepared(con, prepared: PreparedContract, *, user: access.User,
                    index: bool = True) -> tuple[Accepted, list[str]]:
    # Two sessions ingesting at once may race on a new domain, the search vocabulary or the
    # audit seq; the loser's transaction rolled back whole, so it is simply run again.
    return audit.retry_write(con, lambda: _store_contract(con, prepared, user=user, index=index))


def store_contracts(con: duckdb.DuckDBPyConnection, prepared: list[PreparedContract], *,
                    user: access.User, index: bool = True) -> list[IngestReport]:
    """Store prepared contracts, one report each, in their order. Several go in one batch
    transaction (catalog.ingest_batch); a contract the batch cannot take (see there), or any
    write error in the batch, falls back to one transaction per file."""
    from catalog import ingest_batch

    if not prepared:
        return []
    reports: dict[int, IngestReport] = {}
    single = list(range(len(prepared)))
    if len(prepared) > 1:
        try:
            outcomes, single = audit.retry_write(con, lambda: ingest_batch.store_batch(
                con, prepared, user=user, index=index))
            for position, (accepted, warnings) in outcomes.items():
                reports[position] = IngestReport(accepted=[accepted],
                                                 warnings=[Warning_(accepted.file, w) for w in warnings])
        except Exception:  # noqa: BLE001 - rolled back whole: every file is stored on its own below
            single = list(range(len(prepared)))
    for position in single:
        item = prepared[position]
        try:
            accepted, warnings = _store_prepared(con, item, user=user, index=index)
            reports[position] = IngestReport(accepted=[accepted],
                                             warnings=[Warning_(item.source, w) for w in warnings])
        except odcs.ContractError as exc:
            reports[position] = IngestReport(rejected=[Rejected(item.source, str(exc))])
        except Exception as exc:  # noqa: BLE001 - its transaction rolled back; the others go on
            reports[position] = _internal_error(item.source, exc)
    return [reports[i] for i in range(len(prepared))]


def _store_contract(con, prepared: PreparedContract, *, user: access.User,
                    index: bool = True) -> tuple[Accepted, list[str]]:
    contract, validation, text, source = prepared.contract, prepared.validation, prepared.text, prepared.source
    product_id, content_hash = prepared.product_id, prepared.content_hash
    now = datetime.now(UTC).replace(tzinfo=None)
    with transaction(con):
        summary_current = product_summary.is_current(con)  # before this write moves its fingerprint
        latest = con.execute(
            "SELECT revision, content_hash, product_id, version FROM contracts WHERE contract_id = ? "
            "ORDER BY revision DESC LIMIT 1", [contract.id]).fetchone()
        if latest and latest[1] == content_hash:
            return Accepted(source, contract.id, contract.version, unchanged=True), validation.warnings
        if not (latest and latest[2] == product_id):
            _refuse_takeover(con, contract, product_id)
        revision = (latest[0] + 1) if latest else 1
        con.execute(
            "INSERT INTO contracts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [contract.id, revision, contract.version, product_id, contract.name,
             validation.api_version, validation.validated_against, contract.status, text,
             content_hash, source, now, user.email])
        _write_contract_details(con, contract.id, prepared.rows, now)
        product_summary.refresh(con, sorted({product_id} | ({latest[2]} if latest else set())),
                                was_current=summary_current)
        if prepared.document_json is not None:
            con.execute("INSERT INTO contract_documents VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                        [content_hash, prepared.document_json, now])
        if index:
            search.reindex(con, sorted({product_id} | ({latest[2]} if latest else set())))
        audit.record(con, actor=user, action="ingest", target=f"contract:{contract.id}",
                     before={"revision": latest[0], "content_hash": latest[1]} if latest else None,
                     after={"revision": revision, "version": contract.version, "product": product_id,
                            "content_hash": content_hash, "file": source})
    older = _older_version_warning(contract.id, contract.version, latest[3], latest[0]) if latest else []
    return Accepted(source, contract.id, contract.version), validation.warnings + older


def _identities(rows) -> set[str]:
    """Who a set of owner rows names: usernames, emails and team names, case-folded."""
    return {str(v).strip().casefold() for row in rows for v in row if v and str(v).strip()}


def _refuse_takeover(con, contract, product_id: str) -> None:
    """A contract joining a product other contracts already describe must come from the
    product's domain and name one of its current owners; otherwise it could move, deprecate,
    re-describe or re-own someone else's product. (New revisions of a contract already
    attached to the product do not come here.)"""
    product = con.execute(
        "SELECT p.name, p.domain_id, p.status, p.description, d.name FROM products p "
        "LEFT JOIN domains d USING (domain_id) WHERE p.product_id = ?", [product_id]).fetchone()
    attached = con.execute("SELECT DISTINCT contract_id FROM contracts WHERE product_id = ? AND contract_id <> ?",
                           [product_id, contract.id]).fetchall()
    if not product or not attached:
        return
    name, domain_id, status, description, domain_name = product
    current = con.execute("SELECT username, email, team FROM owners WHERE product_id = ? AND active",
                          [product_id]).fetchall()
    proposed = [(o["username"], o["email"], o["team"]) for o in odcs.owners_of(contract)]
    new_domain = odcs.slug(contract.domain) if contract.domain else "unassigned"  # as stored
    problems = []
    if new_domain != domain_id:
        problems.append(f"its domain is {contract.domain or '(none)'!r}, the product's is "
                        f"{domain_name or domain_id!r}")
    if not _identities(current) & _identities(proposed):
        problems.append("it names none of the product's current owners")
    if not problems:
        return
    changes = []
    if contract.domain and new_domain != domain_id:
        changes.append(f"move it from domain {domain_name or domain_id!r} to {contract.domain!r}")
    if contract.status and contract.status != status:
        changes.append(f"set its status {status!r} -> {contract.status!r}")
    desc = contract.description
    new_description = (desc.purpose if desc else None) or _first_schema_description(contract)
    if new_description != description:
        changes.append("replace its description")
    added = sorted({o["email"] or o["username"] or o["team"] for o in odcs.owners_of(contract)}
                   - {r[1] or r[0] or r[2] for r in current} - {None})
    if added:
        changes.append(f"add owners {', '.join(added)}")
    raise odcs.ContractError(
        f"contract {contract.id} is refused: it would attach to the existing product {product_id!r} "
        f"({name}, described by {', '.join(sorted(c for (c,) in attached))}), but "
        f"{' and '.join(problems)}; it would have "
        f"{'; '.join(changes) if changes else 'joined the product'}. A contract may join an existing "
        "product only from the same domain and naming one of its current owners, or as a new "
        "revision of a contract already attached to it")
