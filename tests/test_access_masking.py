"""PII masking: who sees what, and that every unmasked view is audited."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from catalog import access, audit_query, masking
from catalog.store import connect

PII = ["email", "full_name", "birth_date"]


@pytest.fixture
def con(tmp_path):
    with connect(tmp_path / "masking.duckdb") as con:
        yield con


@pytest.fixture
def users() -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": [1, 2, 3],
        "email": ["jane.doe@example.com", None, "x@localhost"],
        "full_name": ["Jane Doe", "Bo", None],
        "birth_date": pd.to_datetime(["1990-02-01", "1985-07-30", None]),
        "country": ["DE", "FR", "NL"],
    })


@pytest.mark.parametrize(("value", "masked"), [
    ("jane.doe@example.com", "j***@e***.com"),
    ("x@localhost", "x***@l***"),
    ("Jane Doe", "J***"),
    ("B", "***"),
    (19900201, "***"),
    (None, None),
    (float("nan"), None),
])
def test_partial_masking_keeps_a_hint_and_nulls(value, masked):
    assert masking.mask_value(value, style="partial") == masked


def test_hash_masking_is_stable_per_salt_and_hides_the_value():
    one = masking.mask_value("jane.doe@example.com", style="hash", salt="s1")
    assert one == masking.mask_value("jane.doe@example.com", style="hash", salt="s1"), "equal in, equal out"
    assert one != masking.mask_value("jane.doe@example.com", style="hash", salt="s2"), "the salt matters"
    assert one.startswith("h:") and "jane" not in one and len(one) == 14, one


@pytest.mark.parametrize("role", ["viewer", "steward", "leadership", "legal", "admin"])
def test_roles_without_view_pii_always_get_masked_data(con, users, role):
    shown = masking.mask_frame(users, PII, access.demo_user(role), con=con, target="customers.users")
    assert shown.email.tolist() == ["j***@e***.com", None, "x***@l***"], shown.email.tolist()
    assert shown.full_name.tolist() == ["J***", "B***", None], shown.full_name.tolist()
    assert shown.birth_date.tolist()[:2] == ["***", "***"] and shown.birth_date.tolist()[2] is None
    assert shown.country.tolist() == ["DE", "FR", "NL"], "non-PII columns are untouched"
    assert users.email.iloc[0] == "jane.doe@example.com", "the caller's frame is never changed"
    assert audit_query.query(con).empty, "a masked view is not an audited event"


def test_view_pii_sees_unmasked_data_and_each_view_is_audited(con, users):
    scientist = access.demo_user("data_scientist")
    for _ in range(2):
        shown = masking.mask_frame(users, PII, scientist, con=con, target="customers.users")
        assert shown.email.iloc[0] == "jane.doe@example.com", "data_scientist may see PII"
    rows = audit_query.query(con, action="view_pii", newest_first=False)
    assert len(rows) == 2, "every unmasked view gets its own audit row"
    assert rows.actor.iloc[0] == scientist.email and rows.target.iloc[0] == "customers.users"
    assert json.loads(rows.after.iloc[0]) == {"columns": PII, "rows": 3}, rows.after.iloc[0]


def test_unmasked_data_never_leaves_without_its_audit_row(users):
    shown = masking.mask_frame(users, PII, access.demo_user("data_scientist"), target="customers.users")
    assert shown.email.iloc[0] == "j***@e***.com", "no connection to audit on → masked, even for view_pii"


def test_pii_column_names_match_case_insensitively_and_absent_columns_are_fine(con, users):
    shown = masking.mask_frame(users, ["EMAIL", "ssn"], access.demo_user("viewer"), con=con, target="t")
    assert shown.email.iloc[0] == "j***@e***.com" and shown.full_name.iloc[0] == "Jane Doe"
    untouched = masking.mask_frame(users, ["ssn"], access.demo_user("data_scientist"), con=con, target="t")
    assert untouched is users and audit_query.query(con).empty, "no PII present → nothing to mask or audit"


def test_failing_row_samples_are_masked_like_frames(con):
    sample = [{"email": "a.b@corp.io", "age": 41}, {"email": None, "age": 7}]
    masked = masking.mask_records(sample, ["email"], access.demo_user("steward"), con=con, target="chk")
    assert masked == [{"email": "a***@c***.io", "age": 41}, {"email": None, "age": 7}], masked
    shown = masking.mask_records(sample, ["email"], access.demo_user("data_scientist"), con=con, target="chk")
    assert shown == sample and len(audit_query.query(con, action="view_pii")) == 1


def test_pii_columns_come_from_the_catalog(con):
    con.execute("""INSERT INTO columns (contract_id, product_id, dataset, column_name, position,
                   physical_name, pii) VALUES
                   ('c1', 'customers', 'users', 'email', 0, 'email_address', true),
                   ('c1', 'customers', 'users', 'country', 1, NULL, false),
                   ('c2', 'orders', 'orders', 'buyer_name', 0, NULL, true)""")
    assert masking.pii_columns(con, product_id="customers") == ["email", "email_address"]
    assert masking.pii_columns(con, product_id="customers", dataset="nope") == []
    assert masking.pii_columns(con) == ["buyer_name", "email", "email_address"]
