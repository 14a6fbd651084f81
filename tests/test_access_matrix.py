"""Roles, the permission matrix, require(), role bindings and the serving check."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import access, audit_query, role_bindings, serving
from catalog.access import PermissionDenied, User
from catalog.cli import main as catalog_main
from catalog.store import connect

FIXTURES = Path(__file__).parent / "fixtures" / "auth"


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "access.duckdb") as con:
        yield con


def user(*roles: str, email: str = "someone@example.com") -> User:
    return User(email=email, name=email, roles=roles, source="oidc")


ADMIN = access.demo_user("admin")


# --- the matrix as data ---------------------------------------------------------------------

def test_every_role_has_a_row_in_both_matrices_and_names_only_known_keys():
    assert set(access.PAGE_ACCESS) == set(access.ROLES), "a role without a page row sees nothing by accident"
    assert set(access.ACTION_ACCESS) == set(access.ROLES), "a role without an action row"
    for role in access.ROLES:
        unknown_pages = access.PAGE_ACCESS[role] - set(access.PAGES)
        unknown_actions = access.ACTION_ACCESS[role] - set(access.ACTIONS)
        assert not unknown_pages, f"{role} names unknown pages {unknown_pages}"
        assert not unknown_actions, f"{role} names unknown actions {unknown_actions}"


@pytest.mark.parametrize(("role", "action", "allowed"), [
    ("viewer", "run_checks", False), ("viewer", "view_pii", False), ("viewer", "ingest", False),
    ("viewer", "export_evidence", False), ("viewer", "manage_roles", False),
    ("steward", "run_checks", True), ("steward", "ingest", True), ("steward", "edit_policies", True),
    ("steward", "view_pii", False), ("steward", "manage_roles", False),
    ("data_scientist", "view_pii", True), ("data_scientist", "run_checks", True),
    ("data_scientist", "ingest", False),
    ("leadership", "run_checks", False), ("leadership", "view_pii", False),
    ("legal", "export_evidence", True), ("legal", "view_pii", False), ("legal", "run_checks", False),
    ("admin", "manage_roles", True), ("admin", "export_evidence", True),
    ("admin", "view_pii", False),  # separation of duties: an admin grants itself data_scientist, audited
])
def test_can_follows_the_matrix(role, action, allowed):
    assert access.can(user(role), action) is allowed, f"{role} / {action} should be {allowed}"


def test_only_admin_manages_roles_and_only_legal_and_admin_see_the_audit_page():
    assert access.roles_allowing("manage_roles") == ["admin"], "role management must stay with admins"
    seeing_audit = [r for r in access.ROLES if "audit" in access.PAGE_ACCESS[r]]
    assert seeing_audit == ["legal", "admin"], f"audit page visible to {seeing_audit}"
    seeing_admin = [r for r in access.ROLES if "admin" in access.PAGE_ACCESS[r]]
    assert seeing_admin == ["admin"], f"admin page visible to {seeing_admin}"


def test_several_roles_combine_and_no_role_sees_nothing():
    both = user("viewer", "legal")
    assert access.can(both, "export_evidence"), "legal's action must survive being combined with viewer"
    assert "audit" in access.visible_pages(both), "legal's page must survive being combined"
    nobody = user()
    assert access.visible_pages(nobody) == [], "a user without roles must see no page"
    assert not any(access.can(nobody, a) for a in access.ACTIONS), "a user without roles may do nothing"


def test_visible_pages_keep_the_page_order_and_unknown_pages_are_closed():
    assert access.visible_pages(user("admin")) == list(access.PAGES), "admin sees every page, in order"
    assert not access.can_see(user("admin"), "not-yet-built"), "a page missing from the matrix must be closed"


def test_unknown_actions_and_roles_are_errors_not_silent_denials():
    with pytest.raises(ValueError, match="unknown action"):
        access.can(user("admin"), "delete_everything")
    with pytest.raises(ValueError, match="unknown role"):
        User(email="x@example.com", name="x", roles=("superuser",), source="oidc")


def test_permission_matrix_table_matches_the_data():
    table = access.permission_matrix().set_index("role")
    for role in access.ROLES:
        for action in access.ACTIONS:
            assert table.loc[role, action] == (action in access.ACTION_ACCESS[role]), f"{role}/{action}"
        for page in access.PAGES:
            assert table.loc[role, f"page: {page}"] == (page in access.PAGE_ACCESS[role]), f"{role}/{page}"


# --- require -----------------------------------------------------------------------------------

def test_require_names_who_what_and_which_role_would_allow_it():
    viewer = user("viewer", email="vic@example.com")
    with pytest.raises(PermissionDenied) as denied:
        access.require(viewer, "run_checks", target="customer-profiles")
    message = str(denied.value)
    for part in ("vic@example.com", "viewer", "run_checks", "customer-profiles", "steward", "admin"):
        assert part in message, f"{part!r} missing from the refusal: {message}"
    assert denied.value.action == "run_checks" and denied.value.user is viewer


def test_require_passes_the_user_through_and_refuses_a_missing_user():
    steward = user("steward")
    assert access.require(steward, "run_checks") is steward, "require returns the user for chaining"
    with pytest.raises(TypeError, match="needs a user"):
        access.require(None, "run_checks")


def test_require_page_refuses_with_the_roles_that_would_see_it():
    with pytest.raises(access.PageDenied, match="legal, admin"):
        access.require_page(user("steward"), "audit")
    assert isinstance(access.PageDenied(user(), "audit"), PermissionDenied), \
        "callers catching PermissionDenied must also catch page refusals"


# --- who is acting -----------------------------------------------------------------------------

def test_resolve_user_by_email_group_and_default(con):
    role_bindings.seed_bindings(con, FIXTURES / "roles.toml", user=ADMIN)
    ada = role_bindings.resolve_user(con, "ADA.admin@example.com", email_verified=True)
    assert ada.roles == ("admin",), f"the default normalisation lower-cases a verified address: {ada.roles}"
    assert ada.matched == ("email",), f"the audit must say the e-mail matched: {ada.matched}"
    dana = role_bindings.resolve_user(con, "dana.scientist@example.com", ["execs"], email_verified=True)
    assert dana.roles == ("steward", "data_scientist", "leadership"), f"email + group roles unite: {dana.roles}"
    assert dana.matched == ("email", "group:execs"), dana.matched
    grouped = role_bindings.resolve_user(con, "new.lawyer@example.com", ["legal-team"], name="New Lawyer",
                                  email_verified=True)
    assert grouped.roles == ("legal",) and grouped.name == "New Lawyer", grouped
    stranger = role_bindings.resolve_user(con, "stranger@example.com", ["Legal-Team"], email_verified=True)
    assert stranger.roles == ("viewer",), f"group names are exact; unknown → viewer: {stranger.roles}"
    assert stranger.matched == ("default",), stranger.matched


# The attack of issue 8 item 3: a provider let a user claim the admin's address unverified,
# in other case and with a trailing space, and the login got the admin role.
ADMIN_CLAIM_VARIANTS = ["ada.admin@example.com", "Ada.Admin@Example.com ", " ada.admin@example.com",
                        "ADA.ADMIN@EXAMPLE.COM"]


@pytest.mark.parametrize("claimed", ADMIN_CLAIM_VARIANTS)
def test_an_unverified_email_gets_no_role_bound_to_that_address(con, claimed):
    role_bindings.seed_bindings(con, FIXTURES / "roles.toml", user=ADMIN)
    user = role_bindings.resolve_user(con, claimed, email_verified=False, fallback_role=None)
    assert user.roles == (), f"unverified {claimed!r} must not get the admin's roles: {user.roles}"
    with_default = role_bindings.resolve_user(con, claimed, email_verified=False)
    assert with_default.roles == ("viewer",) and with_default.matched == ("default",), \
        f"an unverified address is a stranger, with the default role only: {with_default}"
    assert with_default.email == f"{claimed} (unverified)", \
        f"the audit actor must not pass for the verified address: {with_default.email!r}"


@pytest.mark.parametrize("claimed", ["Ada.Admin@Example.com ", " ada.admin@example.com",
                                     "ada.admin@example.com\t", "ada.admin @example.com"])
def test_a_verified_email_with_whitespace_is_not_the_bound_address(con, claimed):
    role_bindings.seed_bindings(con, FIXTURES / "roles.toml", user=ADMIN)
    user = role_bindings.resolve_user(con, claimed, email_verified=True, fallback_role=None)
    assert user.roles == (), f"{claimed!r} is not ada.admin@example.com: nothing is stripped ({user.roles})"


def test_exact_normalisation_keeps_the_local_part_case(con, monkeypatch):
    monkeypatch.setenv("MESHGOV_EMAIL_NORMALISATION", "exact")
    role_bindings.grant(con, user=ADMIN, kind="email", subject="Ada.Admin@Example.COM", role="admin")
    assert role_bindings.list_bindings(con).subject.tolist() == ["Ada.Admin@example.com"], "only the domain is lowered"
    assert role_bindings.resolve_user(con, "Ada.Admin@EXAMPLE.com", email_verified=True).roles == ("admin",)
    other = role_bindings.resolve_user(con, "ada.admin@example.com", email_verified=True, fallback_role=None)
    assert other.roles == (), f"a case-sensitive provider's other local part is another mailbox: {other.roles}"
    monkeypatch.setenv("MESHGOV_EMAIL_NORMALISATION", "nfkc")
    with pytest.raises(ValueError, match="MESHGOV_EMAIL_NORMALISATION"):
        role_bindings.normalise_email("a@b.example")


def test_sub_and_group_bindings_need_no_verified_email(con):
    role_bindings.grant(con, user=ADMIN, kind="sub", subject="248289761001", role="steward")
    user = role_bindings.resolve_user(con, "whoever@example.com", ["execs"], email_verified=False,
                               subject="248289761001", fallback_role=None)
    assert user.roles == ("steward",), f"the provider's account id is bound, not the address: {user.roles}"
    assert user.matched == ("sub:248289761001",), user.matched
    role_bindings.seed_bindings(con, FIXTURES / "roles.toml", user=ADMIN)
    grouped = role_bindings.resolve_user(con, "whoever@example.com", ["execs"], email_verified=False,
                                  fallback_role=None)
    assert grouped.roles == ("leadership",) and grouped.matched == ("group:execs",), grouped


@pytest.mark.parametrize(("claim", "verified"), [(True, True), ("true", True), ("TRUE", True),
                                                 (False, False), ("false", False), (None, False),
                                                 (1, False), ("yes", False)])
def test_email_verified_claim_is_true_only_when_the_provider_says_so(claim, verified):
    assert role_bindings.claim_is_true(claim) is verified, f"email_verified={claim!r}"


def test_unknown_users_can_be_locked_out(con, monkeypatch):
    monkeypatch.setenv("MESHGOV_DEFAULT_ROLE", "none")
    assert role_bindings.resolve_user(con, "stranger@example.com", email_verified=True).roles == (), \
        "default role 'none' locks out"
    assert role_bindings.resolve_user(con, "x@example.com", email_verified=True,
                               fallback_role="leadership").roles == ("leadership",)
    monkeypatch.setenv("MESHGOV_DEFAULT_ROLE", "superuser")
    with pytest.raises(ValueError, match="not a role"):
        role_bindings.resolve_user(con, "stranger@example.com", email_verified=True)


def test_cli_user_is_the_os_user_or_as_name(monkeypatch):
    monkeypatch.delenv("MESHGOV_ACTOR", raising=False)
    monkeypatch.setattr(access.getpass, "getuser", lambda: "ci-runner")
    assert access.cli_user().email == "ci-runner" and access.cli_user().source == "cli"
    assert access.cli_user("release-bot").email == "release-bot", "--as NAME wins over the OS user"


def test_demo_users_hold_exactly_their_role():
    for role in access.ROLES:
        persona = access.demo_user(role)
        assert persona.roles == (role,) and persona.source == "demo", persona


# --- role bindings -------------------------------------------------------------------------------

def test_grant_and_revoke_are_audited_with_before_and_after(con):
    assert role_bindings.grant(con, user=ADMIN, kind="email", subject=" Kim@Example.com ", role="steward")
    assert not role_bindings.grant(con, user=ADMIN, kind="email", subject="kim@example.com", role="steward"), \
        "granting an existing binding is a no-op"
    assert role_bindings.grant(con, user=ADMIN, kind="email", subject="kim@example.com", role="legal")
    assert role_bindings.revoke(con, user=ADMIN, kind="email", subject="kim@example.com", role="steward")
    rows = audit_query.query(con, action="role_change", newest_first=False)
    assert list(rows.target) == ["email:kim@example.com"] * 3, rows
    assert list(rows.after) == ['{"roles":["steward"]}', '{"roles":["legal","steward"]}',
                                '{"roles":["legal"]}'], rows.after.tolist()
    assert rows.before.iloc[2] == '{"roles":["legal","steward"]}', rows.before.tolist()
    assert set(rows.actor) == {ADMIN.email}, "the admin who acted is recorded"
    assert role_bindings.resolve_user(con, "kim@example.com", email_verified=True).roles == ("legal",)


@pytest.mark.parametrize("role", [r for r in access.ROLES if r != "admin"])
def test_non_admins_cannot_change_bindings_by_direct_call(con, role):
    actor = user(role)
    for change in (role_bindings.grant, role_bindings.revoke):
        with pytest.raises(PermissionDenied, match="manage_roles"):
            change(con, user=actor, kind="email", subject="me@example.com", role="admin")
    with pytest.raises(PermissionDenied):
        role_bindings.seed_bindings(con, FIXTURES / "roles.toml", user=actor)
    assert role_bindings.list_bindings(con).empty, "a refused change must write nothing"
    assert audit_query.query(con).empty, "a refused change leaves no audit row (nothing happened)"


def test_the_last_admin_cannot_be_revoked(con):
    role_bindings.grant(con, user=ADMIN, kind="email", subject="ada@example.com", role="admin")
    with pytest.raises(ValueError, match="last admin"):
        role_bindings.revoke(con, user=ADMIN, kind="email", subject="ada@example.com", role="admin")
    role_bindings.grant(con, user=ADMIN, kind="group", subject="platform", role="admin")
    assert role_bindings.revoke(con, user=ADMIN, kind="email", subject="ada@example.com", role="admin")


def test_seed_bindings_adds_missing_only_and_bootstrap_only_when_empty(con, monkeypatch):
    assert role_bindings.seed_bindings(con, FIXTURES / "roles.toml", user=ADMIN) == 7
    assert role_bindings.seed_bindings(con, FIXTURES / "roles.toml", user=ADMIN) == 0, "seeding twice adds nothing"
    assert len(role_bindings.list_bindings(con)) == 7
    assert len(audit_query.query(con, action="role_change")) == 1, "one audit row per seeding that changed something"

    monkeypatch.setenv("MESHGOV_ROLES_FILE", str(FIXTURES / "roles_bad_role.toml"))
    assert role_bindings.bootstrap_bindings(con) == 0, "bootstrap must not touch (or even read) a table in use"


def test_bootstrap_seeds_an_empty_table_as_system(tmp_path, monkeypatch):
    monkeypatch.setenv("MESHGOV_ROLES_FILE", str(FIXTURES / "roles.toml"))
    with connect(tmp_path / "fresh.duckdb") as con:
        assert role_bindings.bootstrap_bindings(con) == 7
        assert audit_query.query(con).actor.tolist() == ["system"], "bootstrap is audited as the system"


@pytest.mark.parametrize(("name", "message"), [
    ("roles_bad_role.toml", "unknown role 'superuser'"),
    ("roles_both_subjects.toml", "exactly one of email=, group= or sub="),
])
def test_bad_binding_files_name_the_entry(con, name, message):
    with pytest.raises(ValueError, match=message) as err:
        role_bindings.seed_bindings(con, FIXTURES / name, user=ADMIN)
    assert "binding #1" in str(err.value), f"the error must point at the entry: {err.value}"
    assert role_bindings.list_bindings(con).empty, "a bad file must seed nothing"


def test_example_roles_file_is_valid():
    triples = role_bindings.load_bindings_file(Path(__file__).parent.parent / "config" / "roles.example.toml")
    assert {role for _, _, role in triples} >= {"admin", "steward", "legal"}, triples


def test_roles_cli_grant_list_revoke(tmp_path, capsys):
    db = str(tmp_path / "cli.duckdb")
    assert catalog_main(["roles", "grant", "--email", "a@example.com", "admin", "--db", db, "--as", "ops"]) == 0
    assert catalog_main(["roles", "grant", "--group", "g", "steward", "--db", db]) == 0
    assert catalog_main(["roles", "revoke", "--group", "g", "steward", "--db", db]) == 0
    assert catalog_main(["roles", "revoke", "--email", "a@example.com", "admin", "--db", db]) == 1, \
        "revoking the last admin must fail with exit 1"
    capsys.readouterr()
    assert catalog_main(["roles", "list", "--db", db]) == 0
    listed = capsys.readouterr().out
    assert "a@example.com" in listed and "by ops" in listed, listed
    with connect(db) as con:
        actors = audit_query.query(con).actor.tolist()
    assert actors[-1] == "ops", f"--as names the actor: {actors}"


# --- serving beyond loopback -----------------------------------------------------------------------

@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST"])
def test_loopback_addresses_are_safe_without_login(address):
    serving.ensure_safe_bind(address, auth_configured=False)


@pytest.mark.parametrize("address", [None, "", "  ", "0.0.0.0", "::", "192.168.1.20", "10.0.0.1",
                                     "example.com", "host.docker.internal"])
def test_other_addresses_refuse_demo_mode_with_how_to_fix(address):
    with pytest.raises(serving.UnsafeBind) as refused:
        serving.ensure_safe_bind(address, auth_configured=False)
    message = str(refused.value)
    assert "127.0.0.1" in message and "[auth]" in message, f"the refusal must say how to fix it: {message}"
    serving.ensure_safe_bind(address, auth_configured=True)  # with login configured any address is fine


def test_serve_check_cli(tmp_path, capsys):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nredirect_uri = "http://x/oauth2callback"\ncookie_secret = "s"\n')
    empty = tmp_path / "none.toml"
    assert catalog_main(["serve-check", "--address", "127.0.0.1", "--secrets", str(empty)]) == 0
    assert catalog_main(["serve-check", "--address", "0.0.0.0", "--secrets", str(empty)]) == 1
    assert "refuses to serve on 0.0.0.0" in capsys.readouterr().err
    assert catalog_main(["serve-check", "--address", "0.0.0.0", "--secrets", str(secrets)]) == 0
