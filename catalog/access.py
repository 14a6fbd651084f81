"""Who may see which page and take which action: roles, the page table, a permission matrix,
the acting user and the `require` guard.

The matrix is data (PAGE_ACCESS, ACTION_ACCESS), not if-chains, so the Admin page can show
it as a table and a test can read it. Enforcement is server-side: the catalog/ and checks/
functions that change or reveal something call `require(user, action)` themselves, so a
hidden button is convenience, never the guard.

Who holds which role (the bindings in the store, and the login claims they match) is
catalog.role_bindings; whether the app may serve an address or answer a request is
catalog.serving. Never imports streamlit.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pandas as pd


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
    import pandas as pd

    return pd.DataFrame(rows)



# --- who is acting -------------------------------------------------------------------------

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
