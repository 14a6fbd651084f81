"""PII: what counts as personal data in a contract, and how a value is masked — the one module.

What is PII: `is_pii` (a pii tag, a pii custom property, or a classification naming personal
data), read at ingest for every column. How a value is masked: `mask_value`, the same output
for the same value wherever it is shown — catalog previews, failing-row samples, PII-scan
examples, consent samples — by the kind of value when it is known (an e-mail keeps a hint of
its shape, a card its last four digits) and a generic partial mask otherwise.

Columns the catalog classifies as PII are masked unless the viewer may `view_pii`; an
unmasked view is appended to the audit trail. Unmasked data leaves only together with its
audit row: a permitted viewer without a connection to audit on gets the masked frame.

Two styles: `partial` keeps a hint for a human (`j***@e***.com`), `hash` keeps equality
(a salted sha256 prefix: the same email masks the same way, so joins and counts still work).
Nulls stay null: that a value is missing is not personal data, and null checks need it.

Never imports streamlit.
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import os
import re
import secrets
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from catalog import access, audit

if TYPE_CHECKING:
    import pandas as pd

MaskStyle = Literal["partial", "hash"]
MASK = "***"

_PROCESS_SALT = secrets.token_hex(16)


def default_salt() -> str:
    """`MESHGOV_PII_SALT` (stable hashes across restarts) or a per-process random salt.

    A fixed, public salt would let anyone hash a list of known emails and match them.
    """
    return os.environ.get("MESHGOV_PII_SALT") or _PROCESS_SALT


def pii_columns(con: duckdb.DuckDBPyConnection, *, product_id: str | None = None,
                dataset: str | None = None) -> list[str]:
    """Names (logical and physical) of the columns the catalog marks as PII."""
    clauses, params = ["pii"], []
    if product_id:
        clauses.append("product_id = ?")
        params.append(product_id)
    if dataset:
        clauses.append("dataset = ?")
        params.append(dataset)
    rows = con.execute(
        "SELECT DISTINCT column_name, physical_name FROM columns WHERE " + " AND ".join(clauses),
        params).fetchall()
    names = {n for row in rows for n in row if n}
    return sorted(names)


def is_null(value: Any) -> bool:
    """None, NaN, or one of pandas' missing values (NA, NaT). Those exist only once pandas is
    loaded, so this never loads it: `checks run` does its work without pandas."""
    if value is None:
        return True
    if isinstance(value, float):
        return value != value
    if isinstance(value, decimal.Decimal):
        return value.is_nan()
    pandas = sys.modules.get("pandas")
    if pandas is None:
        return False
    try:
        return bool(pandas.isna(value))
    except (TypeError, ValueError):  # lists, arrays: not a scalar null
        return False


PII_TAGS = frozenset({"pii", "personal", "personal-data", "personal_data", "gdpr-personal", "sensitive-pii"})
PII_PROPERTIES = frozenset({"pii", "ispii", "personaldata", "containspii"})


def is_pii(classification: str | None, tags: list[str] | None, custom: list | None) -> bool:
    """A column is PII when its contract says so: a pii tag, a pii custom property, or a
    classification naming personal data. 'restricted' alone is about access, not PII."""
    if any(str(t).lower() in PII_TAGS for t in tags or []):
        return True
    for prop in custom or []:
        name = (getattr(prop, "property", None) or "").lower().replace("_", "")
        if name in PII_PROPERTIES and str(getattr(prop, "value", "")).lower() in {"true", "yes", "1"}:
            return True
    return bool(classification and re.search(r"pii|personal", classification, re.I))


# --- masking one value, by kind -------------------------------------------------------------

def mask_email(text: str) -> str:
    local, _, domain = text.strip().partition("@")
    labels = domain.split(".")
    if len(labels) == 1:
        return f"{local[:1]}{MASK}@{labels[0][:1]}{MASK}"
    head = ".".join(f"{label[:1]}{MASK}" for label in labels[:-1])
    return f"{local[:1]}{MASK}@{head}.{labels[-1]}"


def mask_keep_last(text: str, keep: int = 2) -> str:
    """Every letter/digit but the last `keep` becomes `*`; separators stay for shape."""
    total = sum(ch.isalnum() for ch in text)
    seen, out = 0, []
    for ch in text.strip():
        if ch.isalnum():
            seen += 1
            out.append(ch if seen > total - keep else "*")
        else:
            out.append(ch)
    return "".join(out)


def mask_iban(text: str) -> str:
    compact = re.sub(r"\s", "", text).upper()
    return compact[:2] + "*" * (len(compact) - 4) + compact[-2:]


def mask_name(text: str) -> str:
    return " ".join(f"{word[:1]}{MASK}" for word in text.split())


def mask_date(value: Any) -> str:
    """A date keeps its decade: `1984-05-03` -> `198*-**-**`."""
    if isinstance(value, dt.date) and not is_null(value):  # datetimes and pandas Timestamps too
        year = value.year
    else:
        try:
            year = dt.datetime.fromisoformat(value).year if isinstance(value, str) else None
        except ValueError:
            year = None
        if year is None:  # other spellings: pandas' parser, as before
            import pandas as pd

            try:
                year = pd.Timestamp(value).year
            except (TypeError, ValueError, OverflowError):
                return "****"
    return f"{str(year)[:3]}*-**-**"


def mask_ip(text: str) -> str:
    text = text.strip()
    if ":" in text:
        return text.split(":")[0] + ":****:…"
    return text.split(".")[0] + ".*.*.*"


# kind (the PII scanner's detector names) -> how a value of that kind is masked
KIND_MASKS = {
    "email": mask_email,
    "phone": lambda v: mask_keep_last(str(v)),
    "iban": mask_iban,
    "card_number": lambda v: mask_keep_last(str(v), 4),
    "card_security_code": lambda v: MASK,
    "national_id": lambda v: mask_keep_last(str(v)),
    "birth_date": mask_date,
    "personal_name": mask_name,
    "ip_address": mask_ip,
}
_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+")


def mask_value(value: Any, *, style: MaskStyle = "partial", salt: str | None = None,
               kind: str | None = None) -> Any:
    """The masked form of one value. `partial` keeps a hint for a human (by `kind` when known;
    an e-mail is recognised by its shape), `hash` keeps equality (salted sha256 prefix).
    Nulls stay null: that a value is missing is not personal data."""
    if is_null(value):
        return None
    text = str(value)
    if style == "hash":
        digest = hashlib.sha256(((salt or default_salt()) + "\x00" + text).encode("utf-8"))
        return "h:" + digest.hexdigest()[:12]
    if style != "partial":
        raise ValueError(f"unknown mask style {style!r}: use 'partial' or 'hash'")
    if kind in KIND_MASKS:
        return KIND_MASKS[kind](value if kind == "birth_date" else text)
    if isinstance(value, str) and _EMAIL_SHAPE.fullmatch(text.strip()):
        return mask_email(text)
    if isinstance(value, str) and len(text) > 1:
        return text[:1] + MASK
    return MASK


def mask_records_always(records: list[dict[str, Any]], columns: Iterable[str],
                        kinds: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows with these columns masked for everyone (stored samples: they outlive the viewer)."""
    wanted = {str(c).lower() for c in columns}
    kinds = {str(k).lower(): v for k, v in (kinds or {}).items()}
    return [{k: (mask_value(v, kind=kinds.get(str(k).lower())) if str(k).lower() in wanted else v)
             for k, v in r.items()} for r in records]


def _matching(columns: Iterable[str], pii: Iterable[str]) -> list[str]:
    wanted = {p.lower() for p in pii}
    return [c for c in columns if str(c).lower() in wanted]


def mask_frame(df: pd.DataFrame, pii_columns: Iterable[str], user: access.User, *,
               con: duckdb.DuckDBPyConnection | None = None, target: str,
               style: MaskStyle = "partial", salt: str | None = None,
               kinds: dict[str, str | None] | None = None) -> pd.DataFrame:
    """`df` with its PII columns masked, or unmasked (and audited) for a view_pii user.
    `kinds` (column -> the scanner's kind) picks the kind's mask, as in failing-row samples.

    `target` names what is shown (e.g. "customer-profiles.users") for the audit row.
    Column names match case-insensitively. The input frame is never changed.
    """
    present = _matching(df.columns, pii_columns)
    if not present:
        return df
    if access.can(user, "view_pii") and con is not None:
        audit.record(con, actor=user, action="view_pii", target=target,
                     after={"columns": present, "rows": int(len(df))})
        return df
    import pandas as pd

    masked = df.copy()
    for column in present:
        # object dtype: a string dtype would turn the kept nulls into NaN
        kind = (kinds or {}).get(column)
        masked[column] = pd.Series([mask_value(v, style=style, salt=salt, kind=kind) for v in df[column].tolist()],
                                   index=df.index, dtype=object)
    return masked


def mask_records(records: list[dict[str, Any]], pii_columns: Iterable[str], user: access.User, *,
                 con: duckdb.DuckDBPyConnection | None = None, target: str,
                 style: MaskStyle = "partial", salt: str | None = None) -> list[dict[str, Any]]:
    """Same as mask_frame for a list of row dicts (failing-row samples in check diagnostics)."""
    keys = list(dict.fromkeys(k for r in records for k in r))
    present = _matching(keys, pii_columns)
    if not present:
        return records
    if access.can(user, "view_pii") and con is not None:
        audit.record(con, actor=user, action="view_pii", target=target,
                     after={"columns": present, "rows": len(records)})
        return records
    return [{k: (mask_value(v, style=style, salt=salt) if k in present else v) for k, v in r.items()}
            for r in records]
