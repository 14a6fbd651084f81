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
import os
import secrets
import stat
from pathlib import Path

from catalog import audit
from catalog.settings import config_dir

KEY_ENV = "MESHGOV_EXTRACT_KEY"
KEY_FILE_NAME = "extract.key"
MIN_KEY_CHARS = 16
PREFIX = "p:"
HEX_CHARS = 16  # 64 bits: collisions are negligible below billions of distinct ids


class PseudonymKeyError(Exception):
    """The pseudonym key cannot be read or created (the message says where and how to fix it)."""


def key_file() -> Path:
    return config_dir() / KEY_FILE_NAME


def pseudonym_key() -> bytes:
    env = os.environ.get(KEY_ENV)
    if env is not None:
        if len(env.strip()) < MIN_KEY_CHARS:
            raise PseudonymKeyError(f"${KEY_ENV} is set but shorter than {MIN_KEY_CHARS} characters; "
                                    "use a long random value (e.g. `openssl rand -hex 32`)")
        return env.strip().encode("utf-8")
    path = key_file()
    try:
        return _read(path)
    except FileNotFoundError:
        return _create(path)


def _read(path: Path) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise PseudonymKeyError(f"the pseudonym key file {path} can be read by other users "
                                f"(mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`")
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if len(text) < MIN_KEY_CHARS:
        raise PseudonymKeyError(f"the pseudonym key file {path} is empty or too short; restore it "
                                "from your backup or delete it (new extracts then no longer join old ones)")
    return text.encode("ascii", errors="replace")


def _create(path: Path) -> bytes:
    # Same recipe as the audit key (catalog.audit): a temporary 0600 file linked into place,
    # so two processes starting at once end up with one key.
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(32) + "\n")
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass
        finally:
            tmp.unlink(missing_ok=True)
        return _read(path)
    except OSError as exc:
        raise PseudonymKeyError(f"cannot create the pseudonym key file {path}: {exc.strerror or exc}; "
                                f"set ${KEY_ENV} or MESHGOV_CONFIG_DIR to a writable folder") from exc


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
