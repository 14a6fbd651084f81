"""Secret keys kept outside the store and git: from an environment variable, else a 0600 file
in meshgov's config folder, created on first use. One recipe for the audit chain's key and the
extracts' pseudonym key."""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

MIN_KEY_CHARS = 16


def load_or_create(*, env: str, path: Path, what: str, short_hint: str, error: type[Exception]) -> bytes:
    """The key in `$env`, else in `path` (created with 32 random bytes, hex, mode 0600).
    `what` names the key in messages ("audit key"); `error` is the caller's exception."""
    value = os.environ.get(env)
    if value is not None:
        if len(value.strip()) < MIN_KEY_CHARS:
            raise error(f"${env} is set but shorter than {MIN_KEY_CHARS} characters; "
                        "use a long random value (e.g. `openssl rand -hex 32`)")
        return value.strip().encode("utf-8")
    try:
        return _read(path, what, short_hint, error)
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        # Written under a temporary name and linked into place: a concurrent process either
        # wins the link or reads the complete key of the process that did.
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
        return _read(path, what, short_hint, error)
    except OSError as exc:
        raise error(f"cannot create the {what} file {path}: {exc.strerror or exc}; "
                    f"set ${env} or MESHGOV_CONFIG_DIR to a writable folder") from exc


def _read(path: Path, what: str, short_hint: str, error: type[Exception]) -> bytes:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise error(f"the {what} file {path} can be read by other users "
                    f"(mode {stat.S_IMODE(mode):o}); run `chmod 600 {path}`")
    text = path.read_text(encoding="ascii", errors="replace").strip()
    if len(text) < MIN_KEY_CHARS:
        raise error(f"the {what} file {path} is empty or too short; {short_hint}")
    return text.encode("ascii", errors="replace")
