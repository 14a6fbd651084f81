"""Who may see which page and take which action: roles, a permission matrix, role bindings.

The matrix is data (PAGE_ACCESS, ACTION_ACCESS), not if-chains, so the Admin page can show
it as a table and a test can read it. Enforcement is server-side: the catalog/ and checks/
functions that change or reveal something call `require(user, action)` themselves, so a
hidden button is convenience, never the guard.

Role bindings live in the store (`role_bindings`), by verified email, by `sub` or by a group claim of the
login token; admins change them (audited); a TOML file can seed them (`seed_bindings`).
Never imports streamlit.
"""

from __future__ import annotations

import getpass
import ipaddress
import os
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import duckdb
import pandas as pd

from catalog import audit

Role = Literal["viewer", "steward", "data_scientist", "leadership", "legal", "admin"]
ROLES: tuple[str, ...] = ("viewer", "steward", "data_scientist", "leadership", "legal", "admin")

ROLE_DESCRIPTIONS: dict[str, str] = {
    "viewer": "browse the catalog, lineage and check results; PII masked",
    "steward": "owns products: ingest contracts, run checks, edit policies",
    "data_scientist": "builds models: run checks, see unmasked PII (each view audited)",
    "leadership": "read-only overview of quality, risk and SLOs",
    "legal": "proves who did what: audit trail, evidence export",
    "admin": "runs meshgov: role bindings, ingest, checks, policies, evidence",
}

Action = Literal["run_checks", "edit_policies", "ingest", "view_pii", "export_evidence",
                 "manage_roles", "make_extract", "view_locations"]
ACTIONS: tuple[str, ...] = ("run_checks", "edit_policies", "ingest", "view_pii",
                            "export_evidence", "manage_roles", "make_extract", "view_locations")

ACTION_DESCRIPTIONS: dict[str, str] = {
    "run_checks": "run quality / contract / PII / policy checks",
    "edit_policies": "create or change policies and check specs",
    "ingest": "ingest contracts, lineage events, model cards, consent records",
    "view_pii": "see PII columns unmasked (audited)",
    "export_evidence": "export the audit trail and evidence as files (audited)",
    "manage_roles": "grant and revoke roles (audited)",
    "make_extract": "write anonymised sandbox extracts of a product (audited)",
    "view_locations": "see where data lives: server paths, database files, hosts",
}

@dataclass(frozen=True)
class Page:
    """One page of the app: the one table app.py builds its navigation from, and the rows of
    the permission matrix (a page not in this table exists for nobody)."""
    key: str
    title: str
    file: str           # the view, relative to the project root
    icon: str           # a Streamlit Material icon (emoji render as boxes without a colour font)
    question: str       # what the page answers, for its audience


PAGE_TABLE: tuple[Page, ...] = (
    Page("overview", "Overview", "views/overview_page.py", ":material/dashboard:",
         "Are we compliant, and where not?"),
    Page("catalog", "Catalog", "views/catalog_page.py", ":material/menu_book:",
         "What products exist, who owns them, what do they promise?"),
    Page("checks", "Checks", "views/checks_page.py", ":material/fact_check:",
         "Which checks fail, and why?"),
    Page("lineage", "Lineage", "views/lineage_page.py", ":material/account_tree:",
         "Where does the data come from, and what breaks if it fails?"),
    Page("models", "Models", "views/models_page.py", ":material/model_training:",
         "Which models run on the mesh, and are their cards complete?"),
    Page("fairness", "Fairness", "views/fairness_page.py", ":material/balance:",
         "Are some groups selected less often than others?"),
    Page("consent", "Consent", "views/consent_page.py", ":material/verified_user:",
         "Did users opt in to what their data is used for?"),
    Page("slos", "SLOs", "views/slo_page.py", ":material/speed:",
         "Do products keep their service levels?"),
    Page("audit", "Audit trail", "views/audit_page.py", ":material/receipt_long:",
         "Who did what, and is the record intact?"),
    Page("admin", "Admin", "views/admin_page.py", ":material/admin_panel_settings:",
         "Who holds which role?"),
)
PAGES: tuple[str, ...] = tuple(page.key for page in PAGE_TABLE)
PAGE_BY_KEY: dict[str, Page] = {page.key: page for page in PAGE_TABLE}

_BROWSE = frozenset({"overview", "catalog", "checks", "lineage", "models", "slos"})
PAGE_ACCESS: dict[str, frozenset[str]] = {
    "viewer": _BROWSE,
    "steward": _BROWSE | {"fairness", "consent"},
    "data_scientist": _BROWSE | {"fairness"},
    "leadership": _BROWSE | {"fairness", "consent"},
    "legal": _BROWSE | {"fairness", "consent", "audit"},
    "admin": frozenset(PAGES),
}

# view_locations: absolute server paths and database files say where the data sits on the
# host; the people who run products need them, readers of the catalog do not.
# Admin deliberately lacks view_pii: running the tool is not a reason to read personal
# data; an admin who needs it grants themselves data_scientist, and that grant is audited.
ACTION_ACCESS: dict[str, frozenset[str]] = {
    "viewer": frozenset(),
    "steward": frozenset({"run_checks", "edit_policies", "ingest", "make_extract", "view_locations"}),
    "data_scientist": frozenset({"run_checks", "view_pii", "make_extract"}),
    "leadership": frozenset(),
    "legal": frozenset({"export_evidence"}),
    "admin": frozenset({"run_checks", "edit_policies", "ingest", "export_evidence",
                        "manage_roles", "make_extract", "view_locations"}),
}

Source = Literal["oidc", "demo", "cli", "system"]


@dataclass(frozen=True)
class User:
    email: str
    name: str
    roles: tuple[str, ...]
    source: Source
    groups: tuple[str, ...] = field(default=())
    # Which claims gave the roles: "email", "sub:ID", "group:NAME" or "default" (OIDC only).
    matched: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        unknown = [r for r in self.roles if r not in ROLES]
        if unknown:
            raise ValueError(f"unknown role(s) {unknown} for {self.email}; known: {', '.join(ROLES)}")

    def require(self, action: str, *, target: str | None = None) -> User:
        """This user may take `action`, else PermissionDenied (the module's `require`)."""
        return require(self, action, target=target)

    @property
    def label(self) -> str:
        roles = ", ".join(self.roles) or "no role"
        return f"{self.name} <{self.email}> ({roles}, {self.source})"


class PermissionDenied(PermissionError):
    """Raised by `require`; the message says who, what, and which role would allow it."""

    def __init__(self, user: User, action: str, target: str | None = None):
        self.user = user
        self.action = action
        self.target = target
        allowed = roles_allowing(action)
        where = f" on {target}" if target else ""
        held = ", ".join(user.roles) or "no role"
        super().__init__(
            f"{user.email} ({held}) may not {action}{where}: it needs one of the roles "
            f"{', '.join(allowed) or '(none)'}. Ask an admin for a role binding."
        )


class PageDenied(PermissionDenied):
    """A page asked for by a role that may not see it."""

    def __init__(self, user: User, page: str):
        self.user, self.action, self.target = user, f"page:{page}", page
        allowed = [r for r in ROLES if page in PAGE_ACCESS[r]]
        held = ", ".join(user.roles) or "no role"
        PermissionError.__init__(
            self, f"{user.email} ({held}) may not open the {page} page: it needs one of the "
                  f"roles {', '.join(allowed) or '(none)'}. Ask an admin for a role binding.")


def roles_allowing(action: str) -> list[str]:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    return [role for role in ROLES if action in ACTION_ACCESS[role]]


def can(user: User, action: str) -> bool:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; known: {', '.join(ACTIONS)}")
    return any(action in ACTION_ACCESS[role] for role in user.roles)


def require(user: User | None, action: str, *, target: str | None = None) -> User:
    """Raise PermissionDenied unless `user` may take `action`; return the user for chaining."""
    if user is None:
        raise TypeError(f"{action} needs a user: pass user=User(...) (catalog.access.cli_user() "
                        "for command-line runs)")
    if not can(user, action):
        raise PermissionDenied(user, action, target)
    return user


def can_see(user: User, page: str) -> bool:
    return any(page in PAGE_ACCESS[role] for role in user.roles)


def require_page(user: User, page: str) -> User:
    if not can_see(user, page):
        raise PageDenied(user, page)
    return user


def visible_pages(user: User) -> list[str]:
    """Page keys this user may open, in the order of PAGES."""
    return [page for page in PAGES if can_see(user, page)]


def permission_matrix() -> pd.DataFrame:
    """One row per role: ✓ per page and per action (for the Admin page and docs)."""
    rows = []
    for role in ROLES:
        row = {"role": role, "description": ROLE_DESCRIPTIONS[role]}
        row.update({f"page: {p}": p in PAGE_ACCESS[role] for p in PAGES})
        row.update({a: a in ACTION_ACCESS[role] for a in ACTIONS})
        rows.append(row)
    return pd.DataFrame(rows)


# --- who is acting -------------------------------------------------------------------------

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


def cli_user(name: str | None = None) -> User:
    """The actor of a command-line run: `--as NAME` or the OS user.

    It holds admin: whoever can write the DuckDB file can already change anything in it,
    so the CLI records who acted rather than pretending to restrict them. Admin still
    lacks view_pii, so the CLI prints no unmasked PII.
    """
    who = name or os.environ.get("MESHGOV_ACTOR") or getpass.getuser()
    return User(email=who, name=who, roles=("admin",), source="cli")


SYSTEM_USER = User(email="system", name="meshgov", roles=("admin",), source="system")

DEMO_DOMAIN = "demo.meshgov.local"


def demo_user(role: str) -> User:
    """The persona of local demo mode for one role."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    title = role.replace("_", " ").title()
    return User(email=f"{role}@{DEMO_DOMAIN}", name=f"Demo {title}", roles=(role,), source="demo")


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


# --- serving --------------------------------------------------------------------------------

LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def is_loopback(address: str | None) -> bool:
    """True only for an address that accepts local connections alone.

    An empty address makes Streamlit listen on every interface, so it is not loopback.
    """
    if not address or not address.strip():
        return False
    host = address.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a hostname we cannot prove is local


def host_name(host_header: str | None) -> str:
    """The name in an HTTP `Host` header, without its port: `[::1]:8501` → `::1`."""
    host = (host_header or "").strip()
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:  # name:port; a bare IPv6 address has several colons
        host = host.partition(":")[0]
    return host.rstrip(".")


def unsafe_host_reason(host_header: str | None) -> str | None:
    """Why a demo-mode request is refused, or None when its `Host` names this machine.

    Binding to loopback is not enough: a page on attacker.example whose name the browser
    resolves to 127.0.0.1 (DNS rebinding) reaches the loopback demo from the victim's own
    browser, with the admin persona one click away. Such a request still says
    `Host: attacker.example`.
    """
    host = host_name(host_header)
    if is_loopback(host):
        return None
    shown = host_header if host_header else "(none)"
    return (f"meshgov's demo mode answers only requests addressed to this machine (localhost, "
            f"127.0.0.1 or ::1), and this one was addressed to {shown}. Open the app as "
            "http://127.0.0.1:PORT, or configure OIDC login to serve it under another name.")


class UnsafeBind(RuntimeError):
    """Demo mode (no login) asked to listen beyond this machine."""


def unsafe_bind_reason(address: str | None, *, auth_configured: bool) -> str | None:
    """Why serving is refused, or None when it is safe: login configured, or loopback only."""
    if auth_configured or is_loopback(address):
        return None
    shown = address if address else "(empty: every interface)"
    return (f"meshgov refuses to serve on {shown} without login: in demo mode anyone who can "
            "reach the app can pick any persona, including admin. Either bind to this machine "
            "only (`streamlit run app.py --server.address 127.0.0.1`, the default in "
            ".streamlit/config.toml), or configure OIDC login: an [auth] section in "
            ".streamlit/secrets.toml (redirect_uri, cookie_secret, client_id, client_secret, "
            "server_metadata_url).")


def ensure_safe_bind(address: str | None, *, auth_configured: bool) -> None:
    """Raise UnsafeBind (with how to fix it) unless `address` is safe to serve on."""
    reason = unsafe_bind_reason(address, auth_configured=auth_configured)
    if reason:
        raise UnsafeBind(reason)


def secrets_have_auth(paths: Iterable[str | Path]) -> bool:
    """Whether any of these secrets.toml files has an [auth] section (for the launcher check)."""
    for path in paths:
        path = Path(path).expanduser()
        if path.is_file():
            try:
                data = tomllib.loads(path.read_text(encoding="utf-8"))
            except tomllib.TOMLDecodeError as exc:
                raise ValueError(f"{path}: not valid TOML: {exc}") from exc
            if isinstance(data.get("auth"), dict) and data["auth"]:
                return True
    return False


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)

