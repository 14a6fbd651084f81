"""PII scanner: precision and recall of every detector on hand-made samples, the declared
rule, the result shape, and that no raw PII ever reaches a result."""

from __future__ import annotations

import json
import random
from datetime import date, datetime, timedelta

import pandas as pd
import pytest

from checks import pii, pii_values
from checks.pii import scan

TODAY = date(2026, 11, 22)

# Value level: (detector, matcher kwargs, positives, negatives). Negatives are the look-alikes
# a careless detector flags: year codes, product codes, ids, dates, decimals, versions.
VALUE_CASES = {
    "email": (
        ["john.doe@example.com", "a@b.co", "x.y+tag@mail.example.org", "o'neil@firma.de",
         "ANNA_K@EXAMPLE.CO.UK", "jan-piet@uni-heidelberg.de"],
        ["john.doe@", "@example.com", "john at example dot com", "mailto:", "a@b", "user@localhost",
         "Please email support", "2024-01-01"],
    ),
    "phone": (
        ["+44 20 7946 0958", "+4915112345678", "(555) 123-4567", "555-123-4567", "555.123.4567",
         "06 12 34 56 78", "020 7946 0958", "0049 30 1234567", "+1 (212) 555-0100",
         "030-12345678"],
        ["2024-01-15", "15.01.2024", "01/02/2024", "123456789", "0012345678", "1234.5678",
         "2019", "12-34", "+1", "4111 1111 1111 1111"],
    ),
    "iban": (
        ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606",
         "NL91ABNA0417164300", "ES9121000418450200051332", "be68539007547034"],
        ["DE89370400440532013001", "DE00 0000 0000 0000 0000 00", "GB82WEST1234569876543",
         "XX12345678901234", "ORDER-2024-000123", "NL91ABNA0417164301"],
    ),
    "card_number": (
        ["4111 1111 1111 1111", "5500-0000-0000-0004", "340000000000009", "6011000000000004",
         "3530111333300000", "4012888888881881", "2223003122003222", "378282246310005"],
        ["4111111111111112", "1234567812345678", "0000000000000000", "2019", "123", "9999",
         "1234-5678-9012", "4111 1111 1111", "12345678901234567890"],
    ),
    "national_id": (
        ["123-45-6789", "234-56-7890", "AB123456C", "AB 12 34 56 C", "12345678Z", "X1234567L",
         "RSSMRA85T10A562S"],
        ["078-05-1120", "666-12-3456", "900-12-3456", "123-00-6789", "123-45-0000", "QQ123456C",
         "12345678A", "123456789", "ABC-123", "2024-01-15"],
    ),
    "ip_address": (
        ["192.168.1.1", "8.8.8.8", "10.0.0.254", "2001:db8::1", "fe80::1ff:fe23:4567:890a",
         "255.255.255.255"],
        ["10.0.0.256", "1.2.3", "01.2.3.4", "3.14", "2024.01.15", "abc::xyz", "1.2.3.4.5",
         "12:30"],
    ),
    "personal_name": (
        ["Maria Garcia", "Anna van der Berg", "Smith, John", "Thomas Müller", "Sophie Marie Dubois",
         "Jean-Pierre Martin"],
        ["Apple iPhone", "New York", "Data Product", "Acme Corp", "great service", "DE", "Paris",
         "Customer Segment A", "late delivery, refund please", "Jack"],
    ),
}


@pytest.mark.parametrize("detector", sorted(VALUE_CASES))
def test_value_precision_and_recall(detector):
    positives, negatives = VALUE_CASES[detector]
    match = pii.DETECTORS_BY_NAME[detector].match
    missed = [v for v in positives if not match(v, hinted=False)]
    false_hits = [v for v in negatives if match(v, hinted=False)]
    recall = 1 - len(missed) / len(positives)
    precision = len(positives) - len(missed)
    precision = precision / (precision + len(false_hits))
    assert (recall, precision) == (1.0, 1.0), \
        f"{detector}: recall {recall:.2f} (missed {missed}), precision {precision:.2f} (false {false_hits})"


def test_name_hints_admit_weaker_forms_only_under_the_hint():
    assert pii_values.is_phone("0612345678", hinted=True) and not pii_values.is_phone("0612345678")
    assert pii_values.is_national_id("123456789", hinted=True) and not pii_values.is_national_id("123456789")
    assert pii_values.is_national_id("111222333", hinted=True), "a valid Dutch BSN (11-proof)"
    assert pii_values.is_card_security_code("123", hinted=True) and not pii_values.is_card_security_code("123")
    assert pii_values.is_personal_name("Smith", hinted=True) and not pii_values.is_personal_name("Smith")


def test_birth_dates_with_and_without_a_name_hint():
    assert pii_values.is_birth_date("1984-05-03", hinted=True, today=TODAY)
    assert pii_values.is_birth_date("03.05.1984", hinted=True, today=TODAY)
    assert pii_values.is_birth_date(date(2020, 1, 1), hinted=True, today=TODAY), "children have birth dates"
    assert not pii_values.is_birth_date("1850-01-01", hinted=True, today=TODAY)
    assert not pii_values.is_birth_date("2030-01-01", hinted=True, today=TODAY)
    assert not pii_values.is_birth_date("not a date", hinted=True, today=TODAY)
    # Without a hint: date-only values of adult ages only.
    assert pii_values.is_birth_date("1984-05-03", today=TODAY)
    assert not pii_values.is_birth_date("1984-05-03 13:45:12", today=TODAY)
    assert not pii_values.is_birth_date("2024-05-03", today=TODAY)


# --- column level ---------------------------------------------------------------------------

def _rng_values(seed: int, make, n: int = 200) -> list:
    rng = random.Random(seed)
    return [make(rng) for _ in range(n)]


def _luhn_complete(prefix: str, length: int, rng: random.Random) -> str:
    body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix) - 1))
    for check in "0123456789":
        if pii_values.luhn_valid(body + check):
            return body + check
    raise AssertionError("unreachable")


_FIRSTS = sorted(pii_values.FIRST_NAMES)
_LASTS = ["Smith", "Müller", "Garcia", "Rossi", "de Vries", "Kowalski", "Dubois", "Jensen",
          "O'Brien", "Nguyen"]

# (column name, values, expected detector or None)
COLUMNS = [
    ("email", _rng_values(1, lambda r: f"{r.choice(_FIRSTS)}.{r.randint(1, 99)}@example.com"), "email"),
    ("contact", _rng_values(2, lambda r: f"+44 20 {r.randint(1000, 9999)} {r.randint(1000, 9999)}"), "phone"),
    ("mobile", _rng_values(3, lambda r: f"06{r.randint(10**7, 10**8 - 1)}"), "phone"),
    ("payout_account", _rng_values(4, lambda r: r.choice(VALUE_CASES["iban"][0])), "iban"),
    ("pan", _rng_values(5, lambda r: _luhn_complete("4", 16, r)), "card_number"),
    ("cvv", _rng_values(6, lambda r: f"{r.randint(100, 999)}"), "card_security_code"),
    ("ssn", _rng_values(7, lambda r: f"{r.randint(100, 665)}-{r.randint(10, 99)}-{r.randint(1000, 9999)}"), "national_id"),
    ("dob", _rng_values(8, lambda r: (date(1950, 1, 1) + timedelta(days=r.randint(0, 20000))).isoformat()), "birth_date"),
    ("d1", _rng_values(9, lambda r: date(1940, 1, 1) + timedelta(days=r.randint(0, 25000))), "birth_date"),
    ("full_name", _rng_values(10, lambda r: f"{r.choice(_FIRSTS).title()} {r.choice(_LASTS)}"), "personal_name"),
    ("contact_person", _rng_values(11, lambda r: f"{r.choice(_FIRSTS).title()} {r.choice(_LASTS)}"), "personal_name"),
    ("surname", _rng_values(12, lambda r: r.choice(_LASTS)), "personal_name"),
    ("last_ip", _rng_values(13, lambda r: f"{r.randint(1, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"), "ip_address"),
    ("card_on_file", _rng_values(14, lambda r: int(_luhn_complete("51", 16, r))), "card_number"),
    # Negatives: every one is a classic false positive.
    ("customer_id", list(range(1, 201)), None),
    ("order_number", _rng_values(20, lambda r: r.randint(100_000_000, 999_999_999)), None),
    ("transaction_id", _rng_values(21, lambda r: r.randint(10**15, 10**16 - 1)), None),
    ("customer_number", _rng_values(22, lambda r: f"00{r.randint(10**7, 10**8 - 1)}"), None),
    ("model_year", _rng_values(23, lambda r: r.randint(1990, 2026)), None),
    ("year_code", _rng_values(24, lambda r: str(r.randint(1990, 2026))), None),
    ("product_code", _rng_values(25, lambda r: f"{r.randint(100, 999)}"), None),
    ("sku", _rng_values(26, lambda r: f"{r.choice('ABC')}{r.randint(10, 99)}-{r.randint(100, 999)}"), None),
    ("country", _rng_values(27, lambda r: r.choice(["DE", "US", "FR", "NL", "GB"])), None),
    ("country_code", _rng_values(28, lambda r: r.choice(["+49", "+1", "+33"])), None),
    ("currency", _rng_values(29, lambda r: r.choice(["EUR", "USD"])), None),
    ("comment", _rng_values(30, lambda r: r.choice(["great service", "late delivery, refund please",
                                                    "Paul called about the invoice", "ok"])), None),
    ("amount", _rng_values(31, lambda r: round(r.uniform(1, 5000), 2)), None),
    ("version", _rng_values(32, lambda r: f"{r.randint(1, 12)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 99)}"), None),
    ("created_at", _rng_values(33, lambda r: datetime(2024, 1, 1) + timedelta(seconds=r.randint(0, 10**7))), None),
    ("order_date", _rng_values(34, lambda r: (date(2020, 1, 1) + timedelta(days=r.randint(0, 2000))).isoformat()), None),
    ("contract_start", _rng_values(35, lambda r: date(1980, 1, 1) + timedelta(days=r.randint(0, 15000))), None),
    ("email_hash", _rng_values(36, lambda r: f"{r.getrandbits(256):064x}"), None),
    ("phone_type", _rng_values(37, lambda r: r.choice(["mobile", "home", "work"])), None),
    ("cell_id", _rng_values(38, lambda r: r.randint(100_000_000, 999_999_999)), None),
    ("card_type", _rng_values(39, lambda r: r.choice(["visa", "mastercard"])), None),
    ("name", _rng_values(40, lambda r: r.choice(["Apple iPhone 15", "Espresso Machine", "Data Mesh Book"])), None),
    ("city", _rng_values(41, lambda r: r.choice(["New York", "Berlin", "Paris", "San Francisco"])), None),
    ("score", _rng_values(42, lambda r: r.random()), None),
    ("opted_in", _rng_values(43, lambda r: r.random() < 0.5), None),
    ("segment_uuid", _rng_values(44, lambda r: f"{r.getrandbits(128):032x}"), None),
]


def _scan_columns(columns, declared=None, **kwargs):
    sample = pd.DataFrame({name: values for name, values, _ in columns})
    declared = declared if declared is not None else pd.DataFrame(
        columns=["column_name", "classification", "pii", "tags"])
    return {r.column_name: r for r in scan(sample, declared, product_id="p", dataset="d",
                                           today=TODAY, **kwargs)}


def test_column_precision_and_recall_over_the_labelled_set():
    results = _scan_columns(COLUMNS)
    expected = {name: detector for name, _, detector in COLUMNS}
    flagged = {name for name, r in results.items() if r.status == "failed"}
    truth = {name for name, detector in expected.items() if detector}
    false_positives = sorted(flagged - truth)
    missed = sorted(truth - flagged)
    assert not false_positives, "flagged although not PII: " + "; ".join(
        f"{n}: {results[n].reason}" for n in false_positives)
    assert not missed, "missed PII: " + "; ".join(f"{n}: {results[n].reason}" for n in missed)
    wrong_detector = {n: results[n].diagnostics["detector"] for n in truth
                      if results[n].diagnostics["detector"] != expected[n]}
    assert not wrong_detector, f"right column, wrong detector: {wrong_detector}"


def test_threshold_is_a_share_of_non_null_values():
    emails = ["a.b@example.com"] * 3 + ["n/a"] * 7
    at = _scan_columns([("contact", emails, "email")])["contact"]
    assert (at.status, at.measured, at.threshold) == ("failed", 0.3, 0.3), at.reason
    below = _scan_columns([("contact", emails[1:] + ["n/a"], None)])["contact"]
    assert below.status == "passed" and below.measured == 0.2, below.reason
    with_nulls = _scan_columns([("contact", emails[:3] + [None] * 7, "email")])["contact"]
    assert with_nulls.measured == 1.0, "nulls are not sampled values"
    strict = _scan_columns([("contact", emails, "email")], threshold=0.5)["contact"]
    assert strict.status == "passed" and strict.threshold == 0.5


# --- the declared rule and the result ------------------------------------------------------------

def _declared(*rows):
    return pd.DataFrame(rows, columns=["column_name", "classification", "pii", "tags"])


EMAILS = [f"user{i}@example.com" for i in range(40)]


@pytest.mark.parametrize(("classification", "pii_flag", "tags", "status", "reason_part"), [
    ("public", False, [], "failed", "contract classifies the column 'public' without a pii tag"),
    ("restricted", False, [], "failed", "classifies the column 'restricted' without a pii tag"),
    ("confidential", False, ["customer"], "failed", "'confidential' without a pii tag"),
    (None, False, [], "failed", "contract gives the column no classification and no pii tag"),
    ("restricted", True, [], "passed", "contract declares the column PII"),
    ("public", False, ["PII"], "passed", "declares the column PII"),
    ("personal-data", False, [], "passed", "declares the column PII"),
])
def test_declared_rule(classification, pii_flag, tags, status, reason_part):
    result = scan(pd.DataFrame({"contact": EMAILS}),
                  _declared(("contact", classification, pii_flag, tags)),
                  product_id="crm", dataset="users", contract_id="c1", contract_version="1.2.0")[0]
    assert result.status == status, result.reason
    assert reason_part in result.reason, result.reason
    assert result.reason.startswith("40 of 40 sampled values look like email addresses")


def test_result_shape_and_masked_examples():
    sample = pd.DataFrame({"email": EMAILS, "card": ["4111 1111 1111 1111"] * 40,
                           "iban": ["DE89 3704 0044 0532 0130 00"] * 40})
    results = scan(sample, _declared(("email", "public", False, [])), product_id="crm",
                   dataset="users", contract_id="crm-contract", contract_version="2.0.0")
    email = results[0]
    assert (email.check_id, email.kind, email.target) == ("pii:crm/users/email", "pii", "crm.users.email")
    assert (email.product_id, email.dataset, email.column_name) == ("crm", "users", "email")
    assert (email.contract_id, email.contract_version) == ("crm-contract", "2.0.0")
    assert email.diagnostics["detector"] == "email" and email.diagnostics["name_hint"] is True
    assert email.diagnostics["examples"] == ["u***@e***.com"]
    assert results[1].reason.endswith("the column is not in the contract")
    assert results[1].diagnostics["examples"] == ["**** **** **** 1111"]
    assert results[2].diagnostics["examples"] == ["DE******************00"]
    dumped = json.dumps([r.to_json() for r in results], default=str)
    for raw in ("user1@example.com", "4111 1111 1111 1111", "3704 0044"):
        assert raw not in dumped, f"raw value {raw!r} leaked into a result"


def test_masks_never_show_the_value():
    assert pii.mask_email("john.doe@example.co.uk") == "j***@e***.c***.uk"
    assert pii.mask_keep_last("+44 20 7946 0958") == "+** ** **** **58"
    assert pii.mask_name("Maria Garcia") == "M*** G***"
    assert pii.mask_date("1984-05-03") == "198*-**-**"
    assert pii.mask_ip("192.168.1.1") == "192.*.*.*"
    assert pii.mask_keep_last("123-45-6789") == "***-**-**89"


def test_declared_pii_without_matches_passes_with_a_note_and_gaps_are_skipped():
    sample = pd.DataFrame({"gender": ["f", "m"] * 20, "empty": [None] * 40})
    declared = _declared(("gender", "restricted", True, ["pii"]), ("empty", None, False, []),
                         ("birth_date", "restricted", True, ["pii"]))
    results = {r.column_name: r for r in scan(sample, declared, product_id="p", dataset="d")}
    assert results["gender"].status == "passed"
    assert "declared PII; the scanner does not detect every kind" in results["gender"].reason
    assert results["empty"].status == "skipped" and "no non-null" in results["empty"].reason
    assert results["birth_date"].status == "skipped"
    assert "not in the sampled data" in results["birth_date"].reason


def test_physical_names_find_their_declaration():
    declared = pd.DataFrame([{"column_name": "Email", "physical_name": "email_addr",
                              "classification": "restricted", "pii": True, "tags": ["pii"]}])
    results = scan(pd.DataFrame({"email_addr": EMAILS}), declared, product_id="p", dataset="d")
    assert [r.status for r in results] == ["passed"], [r.reason for r in results]


def test_tags_from_duckdb_arrays_are_understood():
    import duckdb

    declared = duckdb.sql("SELECT 'contact' AS column_name, 'public' AS classification, "
                          "false AS pii, ['personal'] AS tags").df()
    result = scan(pd.DataFrame({"contact": EMAILS}), declared, product_id="p", dataset="d")[0]
    assert result.status == "passed", result.reason


def test_declared_columns_reads_the_catalog(tmp_path):
    from catalog.store import connect

    with connect(tmp_path / "cat.duckdb") as con:
        con.execute("INSERT INTO columns VALUES ('c1', 'p', 'users', 'email', 0, 'email_addr', "
                    "'string', 'varchar', true, false, false, 'restricted', true, NULL, ['pii'])")
        declared = pii.declared_columns(con, contract_id="c1", dataset="users")
    assert declared.to_dict("records")[0]["physical_name"] == "email_addr"
    result = scan(pd.DataFrame({"email_addr": EMAILS}), declared, product_id="p", dataset="users")
    assert result[0].status == "passed"


def test_odd_columns_never_crash_the_scan():
    sample = pd.DataFrame({
        "mixed": pd.Series([1, "a@b.co", None, 2.5], dtype=object),
        "nested": pd.Series([[1, 2], {"a": 1}, None, [3]], dtype=object),
        "blob": pd.Series([b"\x00\x01", None, b"x", b"y"], dtype=object),
        "when": pd.to_datetime(["2024-01-01", None, "2024-01-02", "2024-01-03"], utc=True),
        "big": pd.Series([10**30, 1, 2, 3], dtype=object),
    })
    results = scan(sample, _declared(), product_id="p", dataset="d")
    assert {r.column_name: r.status for r in results} == dict.fromkeys(sample.columns, "passed")
