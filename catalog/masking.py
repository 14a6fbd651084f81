"""PII masking for previews and failing-row samples.

Columns the catalog classifies as PII are masked unless the viewer may `view_pii`; an
unmasked view is appended to the audit trail. Unmasked data leaves only together with its
audit row: a permitted viewer without a connection to audit on gets the masked frame.

Two styles: `partial` keeps a hint for a human (`j***@e***.com`), `hash` keeps equality
(a salted sha256 prefix: the same email masks the same way, so joins and counts still work).
Nulls stay null: that a value is missing is not personal data, and null checks need it.

Never imports streamlit.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable
from typing import Any, Literal

import duckdb
import pandas as pd

from catalog import access, audit

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


def _is_null(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, arrays: not a scalar null
        return False


def mask_value(value: Any, *, style: MaskStyle = "partial", salt: str | None = None) -> Any:
    if _is_null(value):
        return None
    text = str(value)
    if style == "hash":
        digest = hashlib.sha256(((salt or default_salt()) + "\x00" + text).encode("utf-8"))
        return "h:" + digest.hexdigest()[:12]
    if style != "partial":
        raise ValueError(f"unknown mask style {style!r}: use 'partial' or 'hash'")
    if isinstance(value, str) and "@" in text:
        local, _, domain = text.partition("@")
        host, dot, tld = domain.rpartition(".")
        if not dot:
            host, tld = domain, ""
        masked_domain = (host[:1] + MASK) + (f".{tld}" if tld else "")
        return f"{local[:1]}{MASK}@{masked_domain}"
    if isinstance(value, str) and len(text) > 1:
        return text[:1] + MASK
    return MASK


def _matching(columns: Iterable[str], pii: Iterable[str]) -> list[str]:
    wanted = {p.lower() for p in pii}
    return [c for c in columns if str(c).lower() in wanted]


def mask_frame(df: pd.DataFrame, pii_columns: Iterable[str], user: access.User, *,
               con: duckdb.DuckDBPyConnection | None = None, target: str,
               style: MaskStyle = "partial", salt: str | None = None) -> pd.DataFrame:
    """`df` with its PII columns masked, or unmasked (and audited) for a view_pii user.

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
    masked = df.copy()
    for column in present:
        # object dtype: a string dtype would turn the kept nulls into NaN
        masked[column] = pd.Series([mask_value(v, style=style, salt=salt) for v in df[column].tolist()],
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
