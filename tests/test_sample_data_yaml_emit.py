"""The generator's YAML writer (sample_data.yaml_emit): its text must re-parse to the very
document it was given, with PyYAML's SafeLoader (YAML 1.1 rules, timestamps included) and
with the catalog's contract loader, for the real contracts and for strings chosen to trip a
plain-scalar writer."""

from __future__ import annotations

import pytest
import yaml

from catalog import odcs
from sample_data import contracts, scenario, synthetic, yaml_emit

TRICKY_STRINGS = [
    "", " ", "  padded ", "yes", "No", "on", "OFF", "y", "n", "true", "False", "null", "Null", "~",
    "0", "007", "1_000", "0x1F", "0o17", "1e5", "1.5", "-.inf", ".nan", "1:20", "12:30:00",
    "2022-10-03", "2022-10-03T10:00:00Z", "2001-12-14 21:59:43.10 -5", "=", "<<", "key: value",
    "a #comment", "#hash", "- dash", "-", "?", "? q", ": colon", "trailing:", "a:b", "[1, 2]",
    "{a: 1}", "*alias", "&anchor x", "!tag", "!!str x", "|", ">", "'single'", '"double"',
    "back\\slash", "tab\there", "line\nbreak", "cr\rreturn", "\x00nul", "bell\x07", "del\x7f",
    "nel\x85", "ls\u2028", "ps\u2029", "\ufeffbom", "non-char\ufffe",
    "émoji 🎉 ünïcødé", "日本語の説明", "%percent", "@at", "`tick`", "a,b", "Low, medium or high risk.",
    "https://example.com/x?y=1#frag", "x" * 500, "dotted.name", "path/../x", "100%", "v3.1.0",
]


def _both_loaders(text: str):
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)), odcs.load_yaml(text)


@pytest.mark.parametrize("value", TRICKY_STRINGS)
def test_tricky_strings_read_back_as_the_same_string(value):
    document = {"key": value, value or "empty": [value, {"inner": value}], "list": [[value]]}
    text = yaml_emit.dump(document)
    for loaded in _both_loaders(text):
        assert loaded == document, f"{value!r} written as {text!r} read back as {loaded!r}"


def test_numbers_booleans_and_nulls_keep_their_type():
    document = {"ints": [0, -3, 10**20], "floats": [0.5, -2.25, 1e16, 1e-7, float("inf"), -float("inf")],
                "bools": [True, False], "none": None, "empty_map": {}, "empty_list": [],
                "nested": [[], {}, [[1, 2], {"a": None}]], 3: "int key", True: "bool key"}
    text = yaml_emit.dump(document)
    for loaded in _both_loaders(text):
        assert loaded == document, f"written as {text!r}, read back as {loaded!r}"
        assert [type(v) for v in loaded["floats"]] == [float] * 6, "floats must stay floats (1e16 needs a dot)"
        assert loaded["ints"][2] == 10**20 and isinstance(loaded["ints"][2], int), "big ints stay ints"
    nan = yaml.safe_load(yaml_emit.dump({"x": float("nan")}))["x"]
    assert nan != nan, "NaN must come back as NaN"


def test_other_values_are_refused_with_their_type():
    with pytest.raises(TypeError, match="set"):
        yaml_emit.dump({"x": {1, 2}})
    with pytest.raises(ValueError, match="surrogate"):
        yaml_emit.dump({"x": "lone \ud800 surrogate"})


def test_every_generated_contract_reads_back_as_its_document():
    made = [*scenario.PRODUCTS_OF_SCENARIO, scenario.RECOMMENDATIONS_V1, *synthetic.products(60)]
    for product in made:
        document = contracts.document(product)
        text = contracts.to_yaml(document)
        assert text.startswith(contracts.HEADER), "the header marks generated files"
        for loaded in _both_loaders(text):
            assert loaded == document, f"{product.product_id}: the written YAML does not re-parse to its document"
        odcs.validate(odcs.load_yaml(text))  # raises ContractError with the JSON path on a fault


def test_plain_text_stays_readable():
    text = yaml_emit.dump({"description": {"purpose": "Bookkeeping, cash management and reporting."},
                           "tags": ["finance", "pii"]})
    assert text == ("description:\n  purpose: Bookkeeping, cash management and reporting.\n"
                    "tags:\n- finance\n- pii\n"), f"block style, plain scalars where safe; got {text!r}"
