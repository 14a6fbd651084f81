"""PII scanner: does a column look like personal data that its contract does not declare?

Each detector combines a column-name hint with value matching. A column looks like PII for
a detector when at least `threshold` (default 30 %) of its non-null sampled values match.
The value matchers (checks.pii_values) are strict on their own (checksums, IIN prefixes,
separators, plausible ranges); a name hint (e.g. `phone`, `ssn`, `first_name`) additionally
admits the weaker forms that would be false positives elsewhere (bare digit strings, single
capitalised words). Some
detectors never fire without a hint (card security codes, Dutch BSN): their values alone
are indistinguishable from codes and counters. Integer columns are never phones or SSNs
without a hint, so an id column stays quiet; 4-digit year codes and 3-digit product codes
are too short to be a card number, and a CVV needs a `cvv`/`cvc` column name.

Declared rule: a column is declared PII when its catalog `pii` flag is true. The catalog sets
that flag from a pii/personal tag, a pii custom property or a classification naming personal
data; `restricted`/`confidential` alone is about access and does not declare PII (the same
rule as `catalog.masking.is_pii`, re-applied here for frames without the flag).

Outcomes per sampled column:
- looks like PII, not declared -> failed (the finding this check exists for);
- looks like PII, declared -> passed;
- does not look like PII -> passed, whether declared or not. A declared-PII column where
  nothing matched is not a warning: over-declaring is the safe direction, and the detectors
  do not cover every kind of personal data (addresses, gender, hashed ids...);
- no non-null sampled values -> skipped; a catalog column missing from the sample ->
  skipped (nothing to scan, but it does not vanish).
Examples in diagnostics are always masked (e.g. `j***@e***.com`).
"""

from __future__ import annotations

import decimal
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from catalog.masking import (  # noqa: F401 - re-exported
    KIND_MASKS,
    is_null,
    is_pii,
    mask_date,
    mask_email,
    mask_iban,
    mask_ip,
    mask_keep_last,
    mask_name,
)
from checks.pii_values import (
    as_date,
    is_birth_date,
    is_card_number,
    is_card_security_code,
    is_email,
    is_iban,
    is_ip_address,
    is_national_id,
    is_personal_name,
    is_phone,
)
from checks.result import CheckResult

if TYPE_CHECKING:
    import pandas as pd

SHARE_THRESHOLD = 0.30
MAX_EXAMPLES = 3


# --- column names -----------------------------------------------------------------------------

def snake_name(column: str) -> str:
    """`dateOfBirth` / `Date-Of-Birth` -> `date_of_birth`, so hints match any naming style."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", column)
    return re.sub(r"[^a-z0-9]+", "_", spaced.lower()).strip("_")


def _hint(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"(?:^|_)(?:" + "|".join(patterns) + r")(?:_|$)")


_EVENT_NAME = _hint(r"created", r"updated", r"modified", r"deleted", r"order(?:ed)?", r"ship\w*",
                    r"deliver\w*", r"start\w*", r"end\w*", r"expir\w*", r"valid\w*", r"due",
                    r"event", r"ts", r"timestamp", r"at", r"on", r"since", r"until", r"open\w*",
                    r"clos\w*", r"issue\w*", r"post\w*", r"publish\w*", r"sign(?:ed)?_?up",
                    r"regist\w*", r"join\w*", r"seen", r"purchase\w*", r"payment", r"invoice\w*",
                    r"hire\w*", r"load\w*", r"ingest\w*", r"snapshot", r"effective", r"period",
                    r"release\w*", r"launch\w*", r"last", r"sent", r"send")
# `cell_id`, `card_type`, `phone_hash`: the hint names what the column is about, not what
# it holds, so the name does not admit the weaker value forms.
_ABOUT_SUFFIX = re.compile(r"_(?:id|key|code|count|type|kind|flag|hash|hashed|status|"
                           r"verified|valid|consent|opt_in|provider|country|region|format)$")
_VERSION_NAME = _hint(r"version", r"ver", r"release", r"build", r"semver")


# --- detectors --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Detector:
    name: str
    label: str                                   # "email addresses", for reasons
    hint: re.Pattern[str]                        # column-name hint (snake_case name)
    match: Callable[..., bool]                   # (value, hinted=...) -> bool
    mask: Callable[[Any], str]
    value_kinds: frozenset[str]                  # which column kinds it reads
    needs_hint: bool = False                     # values alone never suffice
    hinted_kinds: frozenset[str] = frozenset()   # extra kinds admitted under a hint


def _plain(matcher: Callable[[str], bool]) -> Callable[..., bool]:
    return lambda value, *, hinted=False: matcher(value)


_TEXT = frozenset({"text"})
DETECTORS: tuple[Detector, ...] = (
    Detector("email", "email addresses",
             _hint(r"e_?mail\w*", r"mail", r"email_address"),
             _plain(is_email), KIND_MASKS["email"], _TEXT),
    Detector("phone", "phone numbers",
             _hint(r"phone\w*", r"tel", r"telephone", r"mobile", r"msisdn", r"cell", r"fax",
                   r"cellphone", r"phone_?number"),
             is_phone, KIND_MASKS["phone"], _TEXT, hinted_kinds=frozenset({"integer"})),
    Detector("iban", "IBANs", _hint(r"iban", r"bank_account\w*", r"account_number"),
             _plain(is_iban), KIND_MASKS["iban"], _TEXT),
    Detector("card_number", "payment card numbers",
             _hint(r"card_?number", r"cc_?num\w*", r"credit_card\w*", r"pan", r"card"),
             _plain(is_card_number), KIND_MASKS["card_number"],
             frozenset({"text", "integer"})),
    Detector("card_security_code", "card security codes (CVV/CVC)",
             _hint(r"cvv2?", r"cvc2?", r"cid", r"security_code", r"card_verification\w*"),
             is_card_security_code, KIND_MASKS["card_security_code"], frozenset({"text", "integer"}),
             needs_hint=True),
    Detector("national_id", "national identification numbers",
             _hint(r"ssn", r"social_security\w*", r"national_id\w*", r"nino", r"ni_number",
                   r"tax_id", r"taxpayer_id", r"bsn", r"dni", r"nie", r"nif", r"passport\w*",
                   r"codice_fiscale", r"fiscal_code", r"steuer_id", r"personal_id\w*", r"nir",
                   r"id_number", r"citizen_id"),
             is_national_id, KIND_MASKS["national_id"], _TEXT,
             hinted_kinds=frozenset({"integer"})),
    Detector("birth_date", "birth dates",
             _hint(r"dob", r"birth\w*", r"date_of_birth", r"born", r"birthday", r"geburts\w*",
                   r"naissance", r"geboorte\w*", r"nacimiento", r"nascita"),
             is_birth_date, KIND_MASKS["birth_date"], frozenset({"date", "text"})),
    Detector("personal_name", "personal names",
             _hint(r"first_?name", r"last_?name", r"given_?name", r"family_?name", r"surname",
                   r"full_?name", r"middle_?name", r"maiden_?name", r"forename",
                   r"(?:customer|contact|person|employee|patient|client|holder|owner|recipient|"
                   r"sender|member|account_holder|cardholder|card_holder)_name"),
             is_personal_name, KIND_MASKS["personal_name"], _TEXT),
    Detector("ip_address", "IP addresses",
             _hint(r"ip", r"ip_?addr\w*", r"ipv4", r"ipv6", r"client_ip", r"remote_addr\w*",
                   r"source_ip", r"user_ip"),
             _plain(is_ip_address), KIND_MASKS["ip_address"], _TEXT),
)
DETECTORS_BY_NAME = {d.name: d for d in DETECTORS}


# --- column kinds and sampling ----------------------------------------------------------------

def column_kind(series: pd.Series) -> str:
    """text | integer | float | date | bool | other: which detectors may read the column."""
    import pandas as pd

    dtype = series.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "date"
    if pd.api.types.is_integer_dtype(dtype):
        return "integer"
    if pd.api.types.is_float_dtype(dtype):
        non_null = series.dropna()
        return "integer" if len(non_null) and (non_null == non_null.round()).all() else "float"
    first = series.dropna().head(1).tolist()
    if first and isinstance(first[0], date | datetime):
        return "date"
    if first and isinstance(first[0], bool):
        return "bool"
    if first and isinstance(first[0], int):
        return "integer"
    return "text" if pd.api.types.is_string_dtype(dtype) or pd.api.types.is_object_dtype(dtype) \
        else "other"


def values_kind(non_null: list[Any]) -> str:
    """`column_kind` of a column given as its non-null values as DuckDB returns them: what
    pandas makes of a DuckDB result column (numbers all whole count as integers, dates and
    timestamps as dates, durations as other; the rest is judged by its first value)."""
    if not non_null:
        return "text"
    first = non_null[0]
    if isinstance(first, bool):
        return "bool"
    if isinstance(first, date | datetime):
        return "date"
    if isinstance(first, int):
        return "integer"
    if isinstance(first, float | decimal.Decimal):
        return "integer" if all(_whole(v) for v in non_null) else "float"
    if isinstance(first, timedelta):
        return "other"
    return "text"


def _whole(value: Any) -> bool:
    """A whole number, as pandas' `x == x.round()` sees it (infinities included)."""
    if isinstance(value, decimal.Decimal):
        return value.is_infinite() or value == value.to_integral_value()
    if isinstance(value, float):
        return math.isinf(value) or value.is_integer()
    return isinstance(value, int)


def _values_for(series: pd.Series, kind: str) -> list[Any]:
    return _as_kind(series.dropna(), kind)


def _as_kind(non_null: Iterable[Any], kind: str) -> list[Any]:
    """The values a detector reads: integers as their digits, dates as they are, the rest as text."""
    if kind == "integer":
        return [_integer_text(v) for v in non_null]
    if kind == "date":
        return list(non_null)
    return [v if isinstance(v, str) else str(v) for v in non_null]


def _integer_text(value: Any) -> str:
    # An object column is judged by its first value; later ones may not be numbers at all.
    try:
        return str(int(value))
    except (TypeError, ValueError, OverflowError):
        return str(value)


@dataclass
class Detection:
    detector: Detector
    matched: int
    sampled: int
    hinted: bool
    examples: list[str]

    @property
    def share(self) -> float:
        return self.matched / self.sampled if self.sampled else 0.0


def detect(series: pd.Series | list, column: str, *, today: date | None = None) -> list[Detection]:
    """Every detector's match count over the column's non-null values, best share first.
    `series`: a pandas Series, or the column's values as a list (see `values_kind`)."""
    return _detect(*_column_values(series), column, today=today)


def _column_values(series: pd.Series | list) -> tuple[list[Any], str]:
    """(the values detectors read, the column's kind) of a Series or a list of values."""
    if isinstance(series, list | tuple):
        non_null = [v for v in series if not is_null(v)]
        kind = values_kind(non_null)
        return _as_kind(non_null, kind), kind
    kind = column_kind(series)
    return _values_for(series, kind), kind


def _detect(values: list[Any], kind: str, column: str, *, today: date | None = None) -> list[Detection]:
    name = snake_name(column)
    found: list[Detection] = []
    if not values:
        return found
    # Codes, countries and flags repeat: match each distinct value once, weight by count.
    distinct = Counter(values)
    for detector in DETECTORS:
        hinted = _is_hinted(detector, name)
        readable = detector.value_kinds | (detector.hinted_kinds if hinted else frozenset())
        if kind not in readable or (detector.needs_hint and not hinted):
            continue
        if detector.name == "ip_address" and _VERSION_NAME.search(name):
            continue  # 10.2.0.1 in a `version` column is a release, not a host
        if detector.name == "birth_date" and not hinted and _EVENT_NAME.search(name):
            continue
        matcher = _matcher(detector, hinted, today)
        hits = [v for v in distinct if matcher(v)]
        if detector.name == "birth_date" and not hinted and not _spans_generations(hits):
            hits = []
        matched = sum(distinct[v] for v in hits)
        found.append(Detection(detector, matched, len(values), hinted, _examples(detector, hits)))
    return sorted(found, key=lambda d: (-d.share, not d.hinted))


def _is_hinted(detector: Detector, name: str) -> bool:
    found = detector.hint.search(name)
    if not found:
        return False
    return not _ABOUT_SUFFIX.search(name) or bool(_ABOUT_SUFFIX.search(found.group(0).strip("_")))


def _matcher(detector: Detector, hinted: bool, today: date | None) -> Callable[[Any], bool]:
    if detector.name == "birth_date":
        return lambda v: is_birth_date(v, hinted=hinted, today=today)
    return lambda v: isinstance(v, str) and detector.match(v, hinted=hinted)


def _spans_generations(hits: list[Any]) -> bool:
    """Birth dates of a population spread over decades; a batch of event dates does not."""
    years = [parsed[0].year for v in hits if (parsed := as_date(v))]
    return bool(years) and max(years) - min(years) >= 15


def _examples(detector: Detector, hits: Iterable[Any]) -> list[str]:
    seen: list[str] = []
    for value in hits:
        masked = detector.mask(value)
        if masked not in seen:
            seen.append(masked)
        if len(seen) == MAX_EXAMPLES:
            break
    return seen


# --- declared PII and results ------------------------------------------------------------------

@dataclass(frozen=True)
class Declaration:
    in_contract: bool
    pii: bool
    classification: str | None
    tags: tuple[str, ...]


def _declarations(declared: pd.DataFrame | list[dict[str, Any]]) -> dict[str, Declaration]:
    """Column name -> declaration; a physical_name (when given) finds the same declaration,
    since sampled data carries physical names and the catalog logical ones."""
    found: dict[str, Declaration] = {}
    for row in (declared if isinstance(declared, list) else declared.to_dict("records")):
        tags = tuple(str(t) for t in _as_list(row.get("tags")))
        classification = _text_or_none(row.get("classification"))
        declaration = Declaration(
            True, is_declared_pii(pii=row.get("pii"), classification=classification, tags=tags),
            classification, tags)
        found[str(row["column_name"])] = declaration
        physical = _text_or_none(row.get("physical_name"))
        if physical and physical not in found:
            found[physical] = declaration
    return found


def _text_or_none(value: Any) -> str | None:
    return None if value is None or (not isinstance(value, str) and is_null(value)) else str(value)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if hasattr(value, "tolist"):
        return list(value.tolist())
    return [] if is_null(value) else [value]


def is_declared_pii(*, pii: Any, classification: str | None, tags: Iterable[str]) -> bool:
    """The declared rule: the pii flag, or what the catalog derives it from."""
    if pii is not None and not (isinstance(pii, float) and is_null(pii)) and bool(pii):
        return True
    return is_pii(classification, list(tags), None)


def _how_declared(decl: Declaration) -> str:
    if not decl.in_contract:
        return "the column is not in the contract"
    if not decl.classification:
        return "contract gives the column no classification and no pii tag"
    return f"contract classifies the column '{decl.classification}' without a pii tag"


def scan(sample: pd.DataFrame | Mapping[str, list], declared: pd.DataFrame | list[dict[str, Any]], *,
         product_id: str, dataset: str, contract_id: str | None = None, contract_version: str | None = None,
         threshold: float = SHARE_THRESHOLD, today: date | None = None) -> list[CheckResult]:
    """One `pii` result per sampled column (and a `skipped` one per unsampled catalog column).

    `sample`: a DataFrame, or column -> values (as `runner.sample_rows` gives them);
    `declared`: the catalog's declared columns, as a DataFrame or a list of row dicts."""
    declarations = _declarations(declared)
    results = []
    columns = list(sample.keys()) if isinstance(sample, Mapping) else list(sample.columns)
    for column in columns:
        decl = declarations.get(str(column), Declaration(False, False, None, ()))
        values, kind = _column_values(sample[column])
        detections = _detect(values, kind, str(column), today=today)
        results.append(_column_result(
            str(column), decl, detections, len(values), threshold,
            product_id=product_id, dataset=dataset, contract_id=contract_id,
            contract_version=contract_version))
    scanned = {id(declarations[c]) for c in map(str, columns) if c in declarations}
    for column, decl in declarations.items():
        if column not in columns and id(decl) not in scanned:
            scanned.add(id(decl))
            results.append(_result(
                column, "skipped", f"column not in the sampled data; nothing to scan "
                f"({'declared' if decl.pii else 'not declared'} PII)", None, threshold,
                {"declared": _declared_json(decl)}, product_id=product_id, dataset=dataset,
                contract_id=contract_id, contract_version=contract_version))
    return results


def _declared_json(decl: Declaration) -> dict[str, Any]:
    return {"in_contract": decl.in_contract, "pii": decl.pii,
            "classification": decl.classification, "tags": list(decl.tags)}


def _column_result(column: str, decl: Declaration, detections: list[Detection], non_null: int,
                   threshold: float, **ids: Any) -> CheckResult:
    if non_null == 0:
        return _result(column, "skipped", "no non-null sampled values to scan", None, threshold,
                       {"declared": _declared_json(decl)}, **ids)
    hits = [d for d in detections if d.matched and d.share >= threshold]
    best = hits[0] if hits else (detections[0] if detections else None)
    diagnostics: dict[str, Any] = {
        "detector": best.detector.name if best else None,
        "sampled": non_null,
        "matched": best.matched if best else 0,
        "name_hint": best.hinted if best else False,
        "examples": best.examples if best and hits else [],
        "detectors": {d.detector.name: round(d.share, 4) for d in detections if d.matched},
        "declared": _declared_json(decl),
    }
    measured = round(best.share, 4) if best else 0.0
    if not hits:
        note = " (declared PII; the scanner does not detect every kind of personal data)" \
            if decl.pii else ""
        closest = f"; closest: {best.detector.label} {best.share:.0%}" if best and best.matched else ""
        return _result(column, "passed", f"no PII detected in {non_null} sampled values{closest}{note}",
                       measured, threshold, diagnostics, **ids)
    finding = (f"{best.matched} of {best.sampled} sampled values look like {best.detector.label}"
               + (" (column name agrees)" if best.hinted else ""))
    if decl.pii:
        return _result(column, "passed", f"{finding}; contract declares the column PII",
                       measured, threshold, diagnostics, **ids)
    return _result(column, "failed", f"{finding}; {_how_declared(decl)}",
                   measured, threshold, diagnostics, **ids)


def _result(column: str, status: str, reason: str, measured: Any, threshold: float,
            diagnostics: dict[str, Any], *, product_id: str, dataset: str,
            contract_id: str | None, contract_version: str | None) -> CheckResult:
    return CheckResult(
        check_id=f"pii:{product_id}/{dataset}/{column}", kind="pii",
        target=f"{product_id}.{dataset}.{column}", status=status, reason=reason,
        measured=measured, threshold=threshold, product_id=product_id, dataset=dataset,
        column_name=column, diagnostics=diagnostics, contract_id=contract_id,
        contract_version=contract_version)


def declared_columns(con, *, contract_id: str, dataset: str) -> pd.DataFrame:
    """The catalog's declaration of one dataset's columns, in the shape `scan` expects."""
    return con.execute(
        "SELECT column_name, physical_name, classification, pii, tags FROM columns "
        "WHERE contract_id = ? AND dataset = ? ORDER BY position", [contract_id, dataset]).df()
