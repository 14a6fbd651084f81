"""Does one value look like personal data of a kind: e-mail, phone, IBAN, payment card, card
security code, national id, birth date, personal name, IP address.

Matchers are strict on their own (checksums, IIN prefixes, separators, plausible ranges);
`hinted=True`, passed by checks.pii when the column name hints at the kind, admits the weaker
forms that would be false positives elsewhere (bare digit strings, single capitalised words).
Column names, sampling and the scan's outcomes are checks.pii.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date, datetime
from typing import Any

from catalog.masking import is_null

_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")


def is_email(text: str) -> bool:
    return _EMAIL.fullmatch(text.strip()) is not None

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
    if isinstance(value, datetime):  # pandas Timestamps (and NaT) are datetimes too
        if is_null(value):
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
