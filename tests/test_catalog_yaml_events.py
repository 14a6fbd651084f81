"""safe_yaml.load builds an anchor-free document straight from the parser's events
(catalog.yaml_tree.build_from_events) instead of composing nodes first: for every text, the
outcome must be the composing path's, value or error alike, word for word."""

from __future__ import annotations

from pathlib import Path

import pytest

from catalog import safe_yaml
from sample_data import contracts, synthetic
from tests.conftest import SHARED_FIXTURES
from tests.test_catalog_ingest import mutated_variants, special_cases

CASES = {
    "scalars": "a: 1\nb: 1.5\nc: true\nd: null\ne: ~\nf: 0x1F\ng: 1_000\nh: .inf\ni: 2022-10-03\nj: '1'\nk: yes\n",
    "duplicate keys": "a: 1\na: 2\n",
    "odd keys": "1: one\ntrue: t\nnull: n\n1.5: f\n",
    "collection key": "? [a, b]\n: v\n",
    "merge key": "base: {a: 1}\nother:\n  <<: {b: 2}\n  c: 3\n",
    "explicit tags": "a: !!str 12\nb: !!int '7'\nc: !!map {x: 1}\nd: !!seq [1]\ne: ! 12\n",
    "foreign tag": "a: !custom x\n",
    "binary": "a: !!binary aGVsbG8=\n",
    "set": "a: !!set {x, y}\n",
    "scalar root": "just text\n",
    "list root": "- 1\n- [2, 3]\n- {a: b}\n",
    "empty": "",
    "comments only": "# nothing\n",
    "two documents": "a: 1\n---\nb: 2\n",
    "explicit end": "---\na: 1\n...\n",
    "undefined alias": "a: *nowhere\n",
    "bad float": "a: ._\n",
    "not yaml": "a: [1, 2\n",
    "tab indent": "a:\n\tb: 1\n",
    "deep": "a: " + "[" * 70 + "]" * 70 + "\n",
    "just deep enough": "a: " + "[" * 63 + "]" * 63 + "\n",
    "empty collections": "a: {}\nb: []\nc: [{}, []]\n",
    "nested": "a:\n  b:\n    - c: 1\n      d: [x, {e: f}]\n",
}


def _outcome(text: str):
    try:
        return "value", repr(safe_yaml.load(text))
    except Exception as exc:  # noqa: BLE001 - the error is part of the outcome compared
        return "error", type(exc).__name__, str(exc)


def _texts() -> dict[str, str]:
    texts = dict(CASES)
    if (SHARED_FIXTURES / "odcs").is_dir():  # the mutants are made from the official examples
        texts.update({f"mutant {k}": v for k, v in mutated_variants(40, seed=23).items()})
    texts.update({f"special {k}": v for k, v in special_cases().items()})
    texts.update({p.name: p.read_text(encoding="utf-8") for p in (Path(__file__).parent / "fixtures").rglob("*.yaml")})
    texts.update({p.product_id: contracts.to_yaml(contracts.document(p)) for p in synthetic.products(20)})
    return texts


def test_events_build_what_composing_builds(monkeypatch):
    texts = _texts()
    fast = {name: _outcome(text) for name, text in texts.items()}
    monkeypatch.setattr(safe_yaml, "_built_from_events", lambda text: safe_yaml._UNBUILT)
    composed = {name: _outcome(text) for name, text in texts.items()}
    for name in texts:
        assert fast[name] == composed[name], f"{name}: built from events {fast[name]} != composed {composed[name]}"
    assert sum(o[0] == "value" for o in fast.values()) > len(fast) // 2, "most texts load"
    assert sum(o[0] == "error" for o in fast.values()) >= 5, "the error cases are compared too"


def test_official_fixtures_load_the_same(shared_fixtures, monkeypatch):
    texts = {p.name: p.read_text(encoding="utf-8") for p in (shared_fixtures / "odcs").glob("*.yaml")}
    fast = {name: _outcome(text) for name, text in texts.items()}
    monkeypatch.setattr(safe_yaml, "_built_from_events", lambda text: safe_yaml._UNBUILT)
    assert fast == {name: _outcome(text) for name, text in texts.items()}, \
        "every official example and negative test loads as the composing path loads it"


@pytest.mark.parametrize("name", ["scalars", "nested", "list root", "scalar root", "empty collections"])
def test_plain_documents_are_built_from_events(name):
    assert safe_yaml._built_from_events(CASES[name]) is not safe_yaml._UNBUILT, \
        f"{name}: a plain, anchor-free document takes the event path"
