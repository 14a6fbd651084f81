"""Pseudonyms: identifiers replaced by a keyed hash (HMAC-SHA256 under a secret kept outside the DB).

The same key for every extract and trace, so the pseudonym of `u-00042` is the same in every
sandbox extract (joins between extracts still work) and in a trace, while whoever holds an
extract but not the key cannot hash a list of known ids to re-identify rows.

The key: $MESHGOV_EXTRACT_KEY (16+ characters), else the file `extract.key` in meshgov's
config folder (catalog.settings.config_dir, beside the audit key), created on first use
with mode 0600. Losing it only means new extracts no longer join with old ones.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from catalog import audit, secret_keys
from catalog.settings import config_dir

KEY_ENV = "MESHGOV_EXTRACT_KEY"
KEY_FILE_NAME = "extract.key"
MIN_KEY_CHARS = secret_keys.MIN_KEY_CHARS
PREFIX = "p:"
HEX_CHARS = 16  # 64 bits: collisions are negligible below billions of distinct ids


class PseudonymKeyError(Exception):
    """The pseudonym key cannot be read or created (the message says where and how to fix it)."""


def key_file() -> Path:
    return config_dir() / KEY_FILE_NAME


def pseudonym_key() -> bytes:
    return secret_keys.load_or_create(
        env=KEY_ENV, path=key_file(), what="pseudonym key", error=PseudonymKeyError,
        short_hint="restore it from your backup or delete it (new extracts then no longer join old ones)")


def pseudonym(value: object, *, key: bytes | None = None) -> str | None:
    """`p:` + the first 16 hex digits of HMAC-SHA256(key, str(value)); None stays None."""
    if value is None:
        return None
    digest = hmac.new(pseudonym_key() if key is None else key, str(value).encode("utf-8"), hashlib.sha256)
    return PREFIX + digest.hexdigest()[:HEX_CHARS]


def pseudonym_sql(expression: str) -> str:
    """The same pseudonym computed by DuckDB for a whole column; needs `sql_params(key)` bound.

    HMAC spelled with sha256 and the key's pads as parameters (catalog.audit.hash_params), so
    the key never appears in the query text."""
    text = f"encode(CAST({expression} AS VARCHAR))"
    return (f"CASE WHEN {expression} IS NULL THEN NULL ELSE '{PREFIX}' || "
            f"left(sha256($opad::BLOB || unhex(sha256($ipad::BLOB || {text}))), {HEX_CHARS}) END")


def sql_params(key: bytes | None = None) -> dict[str, bytes]:
    return audit.hash_params(pseudonym_key() if key is None else key)
