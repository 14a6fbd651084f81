"""Who holds which role: the role bindings in the store, and the login claims they match.

A binding names a verified e-mail, an OIDC `sub` or a group claim of the login token;
`resolve_user` turns a login into a catalog.access.User by them (none bound: the default
role). Admins change bindings (`grant`, `revoke`; audited, the last admin kept); a TOML
file can seed them (`seed_bindings`, `bootstrap_bindings` on first start).
Never imports streamlit.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

from catalog import audit
from catalog.access import ROLES, SYSTEM_USER, Source, User, require


def default_role() -> str | None:
    """Role of a logged-in email with no binding; `MESHGOV_DEFAULT_ROLE=none` locks them out."""
    value = os.environ.get("MESHGOV_DEFAULT_ROLE", "viewer").strip().lower()
    if value in ("", "none"):
        return None
    if value not in ROLES:
        raise ValueError(f"MESHGOV_DEFAULT_ROLE={value!r} is not a role; use one of "
                         f"{', '.join(ROLES)} or 'none'")
    return value


_UNSET = object()

EMAIL_NORMALISATIONS = ("lowercase", "exact")


def email_normalisation() -> str:
    """How the identity provider normalises e-mail addresses (`MESHGOV_EMAIL_NORMALISATION`).

    `lowercase` (default): the provider treats addresses case-insensitively and so does
    meshgov (Google, Entra ID, Keycloak, Okta). `exact`: the local part is case-sensitive, as
    RFC 5321 allows; only the domain is lower-cased (DNS names are case-insensitive).
    """
    value = os.environ.get("MESHGOV_EMAIL_NORMALISATION", "lowercase").strip().lower()
    if value not in EMAIL_NORMALISATIONS:
        raise ValueError(f"MESHGOV_EMAIL_NORMALISATION={value!r}; use one of "
                         f"{', '.join(EMAIL_NORMALISATIONS)}")
    return value


def normalise_email(address: str) -> str | None:
    """The form a binding and a claim are compared in, or None for no usable address.

    Nothing is stripped: an `email` claim with a space in it is not the address bound to
    someone (a provider let " Ada.Admin@Example.com" through and it got the admin role).
    """
    if not isinstance(address, str) or not address or any(c.isspace() for c in address):
        return None
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        return None
    if email_normalisation() == "lowercase":
        return f"{local.lower()}@{domain.lower()}"
    return f"{local}@{domain.lower()}"


def claim_is_true(value: object) -> bool:
    """An OIDC boolean claim: JSON true, or the string "true" some providers send."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def resolve_user(con: duckdb.DuckDBPyConnection, email: str, groups: Iterable[str] = (), *,
                 email_verified: bool, subject: str | None = None, name: str | None = None,
                 source: Source = "oidc", fallback_role: str | None | object = _UNSET) -> User:
    """Roles bound to the login's `sub`, to any of its groups, and to its e-mail — the e-mail
    only when the provider verified it (anyone can type someone else's address into an
    unverified profile). None bound → the default role. `User.matched` names the claims whose
    bindings gave a role, for the login's audit row."""
    email_key = normalise_email(email) if email_verified else None
    groups = tuple(str(g) for g in groups)
    rows = con.execute(
        "SELECT DISTINCT subject_kind, subject, role FROM role_bindings "
        "WHERE (subject_kind = 'email' AND subject = ?) "
        "OR (subject_kind = 'sub' AND subject = ?) "
        "OR (subject_kind = 'group' AND list_contains(?, subject))",
        [email_key, subject, list(groups)]).fetchall()
    rows = [r for r in rows if r[2] in ROLES]
    bound = {r[2] for r in rows}
    matched = tuple(sorted({"email" if kind == "email" else f"{kind}:{subj}" for kind, subj, _ in rows}))
    fallback = default_role() if fallback_role is _UNSET else fallback_role
    if not bound and fallback:
        bound = {fallback}
        matched = ("default",)
    roles = tuple(r for r in ROLES if r in bound)
    # An address the provider did not vouch for is marked, so that the audit trail never
    # shows an unverified login under someone else's bare address.
    shown = email_key or (f"{email} (unverified)" if not email_verified else f"{email} (not an address)")
    return User(email=shown, name=name or shown, roles=roles, source=source, groups=groups,
                matched=matched)


# --- role bindings ---------------------------------------------------------------------------

SubjectKind = Literal["email", "group", "sub"]
SUBJECT_KINDS: tuple[str, ...] = ("email", "group", "sub")


def _subject_key(kind: str, subject: str) -> str:
    """A binding's subject as it is compared: an e-mail normalised like the `email` claim, a
    group name or `sub` exactly as the provider sends it (an admin's stray spaces dropped)."""
    if kind not in SUBJECT_KINDS:
        raise ValueError(f"subject kind must be one of {', '.join(SUBJECT_KINDS)}, not {kind!r}")
    subject = subject.strip()
    if not subject:
        raise ValueError(f"empty {kind}")
    if kind != "email":
        return subject
    key = normalise_email(subject)
    if key is None:
        raise ValueError(f"{subject!r} is not an e-mail address")
    return key


def list_bindings(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    return con.execute(
        "SELECT subject_kind, subject, role, granted_by, granted_at FROM role_bindings "
        "ORDER BY subject_kind, subject, role").df()


def grant(con: duckdb.DuckDBPyConnection, *, user: User, kind: SubjectKind, subject: str,
          role: str) -> bool:
    """Bind `role` to an email or group; False when it was already bound. Audited."""
    require(user, "manage_roles", target=f"{kind}:{subject}")
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    key = _subject_key(kind, subject)

    def work() -> bool:
        with audit.own_transaction(con):
            before = _roles_of(con, kind, key)
            if role in before:
                return False
            con.execute("INSERT INTO role_bindings VALUES (?, ?, ?, ?, ?)",
                        [kind, key, role, user.email, _now()])
            audit.record(con, actor=user, action="role_change", target=f"{kind}:{key}",
                         before={"roles": before}, after={"roles": sorted({*before, role})})
            return True

    return audit.retry_write(con, work)


def revoke(con: duckdb.DuckDBPyConnection, *, user: User, kind: SubjectKind, subject: str,
           role: str) -> bool:
    """Remove one binding; False when it did not exist. Refuses to remove the last admin."""
    require(user, "manage_roles", target=f"{kind}:{subject}")
    key = _subject_key(kind, subject)

    def work() -> bool:
        with audit.own_transaction(con):
            before = _roles_of(con, kind, key)
            if role not in before:
                return False
            if role == "admin":
                admins = con.execute("SELECT count(*) FROM role_bindings WHERE role = 'admin'").fetchone()[0]
                if admins <= 1:
                    raise ValueError(f"{kind}:{key} holds the last admin binding; grant admin to "
                                     "someone else first, or nobody can manage roles")
            con.execute("DELETE FROM role_bindings WHERE subject_kind = ? AND subject = ? AND role = ?",
                        [kind, key, role])
            audit.record(con, actor=user, action="role_change", target=f"{kind}:{key}",
                         before={"roles": before}, after={"roles": [r for r in before if r != role]})
            return True

    return audit.retry_write(con, work)


def _roles_of(con, kind: str, key: str) -> list[str]:
    rows = con.execute("SELECT role FROM role_bindings WHERE subject_kind = ? AND subject = ? "
                       "ORDER BY role", [kind, key]).fetchall()
    return [r[0] for r in rows]


def load_bindings_file(path: str | Path) -> list[tuple[str, str, str]]:
    """Read a role-binding TOML file into (kind, subject, role) triples; errors name the entry.

    Format (see config/roles.example.toml):
        [[binding]]
        email = "ada@example.com"     # or: group = "data-legal", or: sub = "<the IdP's sub claim>"
        roles = ["admin"]

    An e-mail binding applies only to a login whose provider verified that address
    (`email_verified`); a `sub` binding is the provider's stable account id.
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML: {exc}") from exc
    triples = []
    for i, entry in enumerate(data.get("binding", []), start=1):
        kinds = [k for k in SUBJECT_KINDS if k in entry]
        if len(kinds) != 1:
            raise ValueError(f"{path}: binding #{i} needs exactly one of email=, group= or sub=")
        kind = kinds[0]
        roles = entry.get("roles")
        if not isinstance(roles, list) or not roles:
            raise ValueError(f"{path}: binding #{i} ({entry[kind]}) needs roles = [...]")
        for role in roles:
            if role not in ROLES:
                raise ValueError(f"{path}: binding #{i} ({entry[kind]}) names unknown role "
                                 f"{role!r}; known: {', '.join(ROLES)}")
            triples.append((kind, _subject_key(kind, str(entry[kind])), role))
    return triples


def seed_bindings(con: duckdb.DuckDBPyConnection, path: str | Path, *, user: User,
                  only_if_empty: bool = False) -> int:
    """Add the bindings of a TOML file that are not there yet; returns how many were added.

    `only_if_empty` is the first-start bootstrap: it seeds the first admin and does
    nothing once anyone has a binding, so the Admin page stays the place to change them.
    """
    require(user, "manage_roles", target=str(path))
    if only_if_empty and _has_bindings(con):
        return 0  # the common case at every app start: skip reading the file
    triples = load_bindings_file(path)

    def work() -> int:
        with audit.own_transaction(con):
            if only_if_empty and _has_bindings(con):
                return 0
            existing = set(con.execute(
                "SELECT subject_kind, subject, role FROM role_bindings").fetchall())
            added = [t for t in dict.fromkeys(triples) if t not in existing]
            now = _now()
            for kind, subject, role in added:
                con.execute("INSERT INTO role_bindings VALUES (?, ?, ?, ?, ?)",
                            [kind, subject, role, user.email, now])
            if added:
                audit.record(con, actor=user, action="role_change", target=f"file:{Path(path).name}",
                             after={"added": [list(t) for t in added]})
            return len(added)

    return audit.retry_write(con, work)


def _has_bindings(con) -> bool:
    return con.execute("SELECT count(*) FROM role_bindings").fetchone()[0] > 0


def roles_file() -> Path | None:
    """The role-binding file to seed from: $MESHGOV_ROLES_FILE, else config/roles.toml if present."""
    from catalog.settings import PROJECT_ROOT

    env = os.environ.get("MESHGOV_ROLES_FILE")
    if env:
        return Path(env)
    default = PROJECT_ROOT / "config" / "roles.toml"
    return default if default.exists() else None


def bootstrap_bindings(con: duckdb.DuckDBPyConnection) -> int:
    """First start with login configured: seed the bindings file into an empty table."""
    path = roles_file()
    if path is None or _has_bindings(con):
        return 0
    return seed_bindings(con, path, user=SYSTEM_USER, only_if_empty=True)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
