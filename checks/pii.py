"""PII scanner: does a column look like personal data that its contract does not declare?

Each detector combines a column-name hint with value matching. A column looks like PII for
a detector when at least `threshold` (default 30 %) of its non-null sampled values match.
Matchers are strict on their own (checksums, IIN prefixes, separators, plausible ranges);
a name hint (e.g. `phone`, `ssn`, `first_name`) additionally admits the weaker forms that
would be false positives elsewhere (bare digit strings, single capitalised words). Some
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

import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd

from catalog.masking import (  # noqa: F401 - re-exported
    KIND_MASKS,
    is_pii,
    mask_date,
    mask_email,
    mask_iban,
    mask_ip,
    mask_keep_last,
    mask_name,
)
from checks.result import CheckResult

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


# --- value matchers ---------------------------------------------------------------------------

_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")

_INTL_PHONE = re.compile(r"(?:\+|00)[1-9][\d\s().-]{6,20}")
_NANP_PHONE = re.compile(r"(?:\+?1[\s.-]?)?\(?[2-9]\d{2}\)?[\s.-]?\d{3}[\s.-]\d{4}")
_NATIONAL_PHONE = re.compile(r"0\d{1,4}(?:[\s.-]\d{2,8}){1,4}")
_DATE_SHAPED = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")


_NON_DIGIT = re.compile(r"\D")
_CARD_SHAPE = re.compile(r"\d(?:[\d -]*\d)?")
_SECURITY_CODE = re.compile(r"\d{3,4}")
_IBAN_SEPARATORS = re.compile(r"[\s-]")
_IBAN_SHAPE = re.compile(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}")
_IP_CHARS = re.compile(r"[0-9a-fA-F:.]{2,45}")
# Dotted quads only, no leading zeros (01.2.3.4 is more often a code than an address).
_IPV4 = re.compile(r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?:\.(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}")


def _digits(text: str) -> str:
    return _NON_DIGIT.sub("", text)


def is_phone(text: str, *, hinted: bool = False) -> bool:
    text = text.strip()
    if _DATE_SHAPED.fullmatch(text):
        return False
    digits = _digits(text)
    # A `00` prefix needs separators: bare `0012345678` is a zero-padded id far more often.
    if _INTL_PHONE.fullmatch(text) and (text.startswith("+") or not text.isdigit()):
        national = digits[2:] if text.startswith("00") else digits
        return 8 <= len(national) <= 15
    if _NANP_PHONE.fullmatch(text):
        return True
    if _NATIONAL_PHONE.fullmatch(text):
        return 9 <= len(digits) <= 12
    # Bare digit strings are phones only under a phone-like column name.
    return hinted and text.isdigit() and 7 <= len(text) <= 15


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


# (prefix range low, high, allowed lengths) for the major card networks' IINs.
_CARD_IIN: list[tuple[int, int, int, tuple[int, ...]]] = [
    (4, 4, 1, (13, 16, 19)),                  # Visa
    (51, 55, 2, (16,)),                       # Mastercard
    (2221, 2720, 4, (16,)),                   # Mastercard 2-series
    (34, 34, 2, (15,)), (37, 37, 2, (15,)),   # American Express
    (6011, 6011, 4, (16, 17, 18, 19)),        # Discover
    (644, 649, 3, (16, 17, 18, 19)), (65, 65, 2, (16, 17, 18, 19)),
    (3528, 3589, 4, (16, 17, 18, 19)),        # JCB
    (300, 305, 3, (14, 16, 17, 18, 19)), (36, 36, 2, (14, 16, 17, 18, 19)),
    (38, 39, 2, (16, 17, 18, 19)),            # Diners Club
    (62, 62, 2, (16, 17, 18, 19)),            # UnionPay
    (50, 50, 2, (12, 13, 14, 15, 16, 17, 18, 19)),
    (56, 58, 2, (12, 13, 14, 15, 16, 17, 18, 19)),  # Maestro
    (6759, 6759, 4, (12, 13, 14, 15, 16, 17, 18, 19)),
]


def is_card_number(text: str) -> bool:
    text = text.strip()
    if not _CARD_SHAPE.fullmatch(text):
        return False
    digits = _digits(text)
    if not 12 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    iin_ok = any(low <= int(digits[:width]) <= high and len(digits) in lengths
                 for low, high, width, lengths in _CARD_IIN)
    return iin_ok and luhn_valid(digits)


def is_card_security_code(text: str, *, hinted: bool = False) -> bool:
    return hinted and _SECURITY_CODE.fullmatch(text.strip()) is not None


_IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18,
    "EE": 20, "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22,
    "IS": 26, "IT": 27, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18,
    "NO": 15, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26,
}


def is_iban(text: str) -> bool:
    compact = _IBAN_SEPARATORS.sub("", text).upper()
    if not _IBAN_SHAPE.fullmatch(compact):
        return False
    expected = _IBAN_LENGTHS.get(compact[:2])
    if expected is not None and len(compact) != expected:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(number) % 97 == 1


# US SSN: area 000, 666 and 900-999, group 00 and serial 0000 are never issued; two numbers
# were published in advertising and are invalid.
_SSN = re.compile(r"(?!000|666|9\d\d)(\d{3})-(?!00)(\d{2})-(?!0000)(\d{4})")
_SSN_BARE = re.compile(r"(?!000|666|9\d\d)\d{3}(?!00)\d{2}(?!0000)\d{4}")
_SSN_INVALID = {"078051120", "219099999"}
_UK_NINO = re.compile(r"(?!BG|GB|NK|KN|TN|NT|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]"
                      r"\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]")
_ES_DNI = re.compile(r"(\d{8})-?([A-Z])")
_ES_NIE = re.compile(r"([XYZ])(\d{7})-?([A-Z])")
_ES_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_IT_CF = re.compile(r"[A-Z]{6}\d{2}[A-EHLMPR-T]\d{2}[A-Z]\d{3}[A-Z]")


def _italian_fiscal_code_valid(code: str) -> bool:
    odd_values = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10,
                  22, 25, 24, 23]
    total = 0
    for index, char in enumerate(code[:15]):
        position = int(char) if char.isdigit() else ord(char) - ord("A")
        total += odd_values[position] if index % 2 == 0 else position
    return chr(ord("A") + total % 26) == code[15]


def _dutch_bsn_valid(digits: str) -> bool:
    if len(digits) != 9:
        return False
    weights = [9, 8, 7, 6, 5, 4, 3, 2, -1]
    return sum(int(d) * w for d, w in zip(digits, weights, strict=True)) % 11 == 0 and digits != "0" * 9


def is_national_id(text: str, *, hinted: bool = False) -> bool:
    text = text.strip().upper()
    if (m := _SSN.fullmatch(text)) and "".join(m.groups()) not in _SSN_INVALID:
        return True
    if _UK_NINO.fullmatch(text):
        return True
    if m := _ES_DNI.fullmatch(text):
        return _ES_LETTERS[int(m.group(1)) % 23] == m.group(2)
    if m := _ES_NIE.fullmatch(text):
        number = str("XYZ".index(m.group(1))) + m.group(2)
        return _ES_LETTERS[int(number) % 23] == m.group(3)
    if _IT_CF.fullmatch(text):
        return _italian_fiscal_code_valid(text)
    # Nine bare digits are an SSN or a Dutch BSN only under an id-like column name.
    if hinted and text.isdigit():
        return (bool(_SSN_BARE.fullmatch(text)) and text not in _SSN_INVALID) \
            or _dutch_bsn_valid(text)
    return False


def is_ip_address(text: str) -> bool:
    text = text.strip()
    if not _IP_CHARS.fullmatch(text):
        return False
    if "." in text and ":" not in text and not _IPV4.fullmatch(text):
        return False
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


# A conservative list of common first names (US, UK, DE, FR, ES, IT, NL, PL, Nordic): names
# that are also everyday words (Will, Mark, Rose, Grace, Max, Summer...) are left out.
FIRST_NAMES = frozenset("""
aaron adam adrian agnieszka alan albert alejandro alessandro alexander alexandra alice alicia
amanda amelie amy ana andrea andreas andrew angela anna anne annika anthony antoine antonio
barbara benjamin bernd brian camille carlos carmen caroline catherine charlotte chloe
christian christina christine christopher claire claudia daniel daniela david deborah dennis
diana dieter dorota edward elena elisabeth elizabeth emily emma eric erik eva fabian fatima
felix fernando florian francesca francesco francisco frederik gabriel george giorgio giulia
giuseppe gregory hannah hans heinz helen henrik isabel isabella jakub james jan jana jason
javier jean jennifer jessica joanna johan johannes john jonas jorge jose joseph joshua juan
julia julian julie jurgen karen karl katarzyna katharina kathleen kenneth kevin kimberly
klaus lars laura lauren leonie linda lisa lorenzo luca lucas lucia luis lukas madeleine
magdalena manuel marco margaret maria marie marina mario martin martina mary matteo matthew
matthias maximilian melanie michael michelle miguel monika nathalie nicholas nicolas nicole
nikolaj olga oliver olivia pablo patricia paul paula pedro peter petra philippe piotr pierre
rachel rebecca richard robert roberto ronald rosa ryan sabine samuel sandra sara sarah
sebastian sergio sharon simon sofia sophie stefan stefanie stephanie steven susan svenja
thomas timothy tobias tomasz ursula valentina vanessa victoria vincent wolfgang xavier
yannick yvonne zofia
""".split())

_NAME_WORD = r"[A-ZÀ-ÖØ-Þ][a-zß-öø-ÿ]+(?:[-'][A-ZÀ-ÖØ-Þa-zß-öø-ÿ][a-zß-öø-ÿ]+)?"
_FIRST_LAST = re.compile(rf"({_NAME_WORD})(?:\s+{_NAME_WORD}\.?)?\s+(?:(?:van|von|de|da|di|del|der|le|la)\s+)*{_NAME_WORD}")
_LAST_COMMA_FIRST = re.compile(rf"{_NAME_WORD},\s+({_NAME_WORD})")
_HINTED_NAME = re.compile(r"[^\W\d_]+(?:[-'. ]+[^\W\d_]+){0,4}\.?")


def is_personal_name(text: str, *, hinted: bool = False) -> bool:
    text = text.strip()
    if not text or len(text) > 60:
        return False
    if hinted:
        return _HINTED_NAME.fullmatch(text) is not None
    if m := _FIRST_LAST.fullmatch(text) or _LAST_COMMA_FIRST.fullmatch(text):
        # Compound first names (Jean-Pierre, Anna-Lena) count by their first part.
        return m.group(1).lower().split("-")[0] in FIRST_NAMES
    return False


_ISO_DATE = re.compile(r"(\d{4})([-/]?)(\d{1,2})\2(\d{1,2})")
_DAY_FIRST_DATE = re.compile(r"(\d{1,2})([./-])(\d{1,2})\2(\d{4})")
_MIDNIGHT = re.compile(r"00:00(?::00(?:\.0+)?)?(?:Z|[+-]00:?00)?")


def _safe_date(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _parse_date_text(text: str) -> date | None:
    # Regexes rather than strptime: strptime over several formats was 80 % of a scan.
    if m := _ISO_DATE.fullmatch(text):
        return _safe_date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
    if m := _DAY_FIRST_DATE.fullmatch(text):
        first, second, year = int(m.group(1)), int(m.group(3)), int(m.group(4))
        return _safe_date(year, second, first) or _safe_date(year, first, second)
    return None


def as_date(value: Any) -> tuple[date, bool] | None:
    """(the date, whether it carries no time of day), or None when it is not a date."""
    if isinstance(value, pd.Timestamp | datetime):
        if pd.isna(value):
            return None
        midnight = value.hour == value.minute == value.second == value.microsecond == 0
        return value.date(), midnight
    if isinstance(value, date):
        return value, True
    if not isinstance(value, str) or not 6 <= len(value) <= 40:
        return None
    text = value.strip()
    day_part, _, time_part = text.partition(" ") if " " in text else text.partition("T")
    parsed = _parse_date_text(day_part)
    if parsed is None:
        return None
    return parsed, not time_part or _MIDNIGHT.fullmatch(time_part) is not None


def _age_years(born: date, today: date) -> float:
    return (today - born).days / 365.25


def is_birth_date(value: Any, *, hinted: bool = False, today: date | None = None) -> bool:
    parsed = as_date(value)
    if parsed is None:
        return False
    born, midnight = parsed
    today = today or date.today()
    if hinted:
        return date(1900, 1, 1) <= born <= today
    # Without a birth-like name only date-only values of adults' ages count; the column
    # guard below also rules out event columns (created_at, order_date...).
    return midnight and 16 <= _age_years(born, today) <= 100


# Masking a value is catalog.masking's (the same output wherever a value is shown).


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
             _plain(lambda v: _EMAIL.fullmatch(v.strip()) is not None), KIND_MASKS["email"], _TEXT),
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


def _values_for(series: pd.Series, kind: str) -> list[Any]:
    non_null = series.dropna()
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


def detect(series: pd.Series, column: str, *, today: date | None = None) -> list[Detection]:
    """Every detector's match count over the column's non-null values, best share first."""
    kind = column_kind(series)
    name = snake_name(column)
    values = _values_for(series, kind)
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


def _declarations(declared: pd.DataFrame) -> dict[str, Declaration]:
    """Column name -> declaration; a physical_name (when given) finds the same declaration,
    since sampled data carries physical names and the catalog logical ones."""
    found: dict[str, Declaration] = {}
    for row in declared.to_dict("records"):
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
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return list(value)
    if hasattr(value, "tolist"):
        return list(value.tolist())
    return [] if pd.isna(value) else [value]


def is_declared_pii(*, pii: Any, classification: str | None, tags: Iterable[str]) -> bool:
    """The declared rule: the pii flag, or what the catalog derives it from."""
    if pii is not None and not (isinstance(pii, float) and pd.isna(pii)) and bool(pii):
        return True
    return is_pii(classification, list(tags), None)


def _how_declared(decl: Declaration) -> str:
    if not decl.in_contract:
        return "the column is not in the contract"
    if not decl.classification:
        return "contract gives the column no classification and no pii tag"
    return f"contract classifies the column '{decl.classification}' without a pii tag"


def scan(sample: pd.DataFrame, declared: pd.DataFrame, *, product_id: str, dataset: str,
         contract_id: str | None = None, contract_version: str | None = None,
         threshold: float = SHARE_THRESHOLD, today: date | None = None) -> list[CheckResult]:
    """One `pii` result per sampled column (and a `skipped` one per unsampled catalog column)."""
    declarations = _declarations(declared)
    results = []
    for column in sample.columns:
        decl = declarations.get(str(column), Declaration(False, False, None, ()))
        detections = detect(sample[column], str(column), today=today)
        results.append(_column_result(
            str(column), decl, detections, len(sample[column].dropna()), threshold,
            product_id=product_id, dataset=dataset, contract_id=contract_id,
            contract_version=contract_version))
    scanned = {id(declarations[c]) for c in map(str, sample.columns) if c in declarations}
    for column, decl in declarations.items():
        if column not in sample.columns and id(decl) not in scanned:
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
