"""Ingest: revisions, rejections with reasons, the --json report, exit codes, and robustness
against files nobody on this project wrote (every file ends accepted / warned / rejected)."""

from __future__ import annotations

import copy
import json
import random
import re
import time
from pathlib import Path

import pytest
import yaml

from catalog import cli, odcs, safe_yaml, search, store
from catalog.ingest import ingest_paths
from tests.conftest import LOCAL_FIXTURES, SHARED_FIXTURES

CONTRACTS = LOCAL_FIXTURES / "contracts"
ORDERS_V1 = CONTRACTS / "orders.v1.odcs.yaml"
ORDERS_V2 = CONTRACTS / "orders.v2.odcs.yaml"
PROFILES = CONTRACTS / "customer-profiles.odcs.yaml"


def counts(con) -> dict[str, int]:
    tables = [r[0] for r in con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE schema_name = 'main'").fetchall()]
    return {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}  # noqa: S608


def one(report):
    outcomes = report.accepted + report.rejected
    assert len(outcomes) == 1, f"one file, one outcome; got {report.to_json()}"
    return outcomes[0]


# --- revisions ------------------------------------------------------------------------------

def test_identical_reingest_is_a_no_op(tmp_db):
    with store.connect(tmp_db) as con:
        first = ingest_paths(con, [ORDERS_V1])
        assert len(first.accepted) == 1 and not first.accepted[0].unchanged, first.to_json()
        before = counts(con)
        again = ingest_paths(con, [ORDERS_V1])
        after = counts(con)
    assert again.accepted and again.accepted[0].unchanged, f"identical re-ingest must say unchanged: {again.to_json()}"
    # The same warnings as the first time at most (e.g. "schema not found" where ../shared is absent)
    assert not again.rejected and [w.message for w in again.warnings] == [w.message for w in first.warnings], \
        again.to_json()
    assert before == after, f"identical re-ingest wrote rows: {before} -> {after}"


def test_changed_contract_becomes_revision_two_and_keeps_revision_one(tmp_db):
    with store.connect(tmp_db) as con:
        ingest_paths(con, [ORDERS_V1])
        report = ingest_paths(con, [ORDERS_V2])
        rows = con.execute("SELECT revision, version, raw_yaml, content_hash FROM contracts "
                           "WHERE contract_id = 'commerce-orders' ORDER BY revision").fetchall()
        columns = [r[0] for r in con.execute(
            "SELECT column_name FROM columns WHERE contract_id = 'commerce-orders' ORDER BY position").fetchall()]
        products = con.execute("SELECT count(*) FROM products").fetchone()[0]
    assert report.accepted and not report.accepted[0].unchanged, report.to_json()
    assert [r[0] for r in rows] == [1, 2], f"expected revisions 1 and 2, got {[r[:2] for r in rows]}"
    assert [r[1] for r in rows] == ["1.0.0", "2.0.0"], rows
    assert rows[0][2] == ORDERS_V1.read_text() and rows[1][2] == ORDERS_V2.read_text(), \
        "each revision keeps its own raw YAML, byte for byte"
    assert rows[0][3] != rows[1][3], "revisions must have different content hashes"
    assert columns == ["order_id", "customer_email", "placed_at"], \
        f"the columns describe the latest revision: {columns}"
    assert products == 1, "a new revision updates its product, it does not add one"


def test_latest_revision_details_and_pii(tmp_db):
    with store.connect(tmp_db) as con:
        ingest_paths(con, [ORDERS_V1, PROFILES])
        pii = {r[0] for r in con.execute("SELECT column_name FROM columns WHERE pii").fetchall()}
        owners = {r[0] for r in con.execute("SELECT name FROM owners").fetchall()}
        domains = {r[0] for r in con.execute("SELECT name FROM domains").fetchall()}
    assert pii == {"customer_email", "email", "birthDate"}, f"columns tagged pii must be flagged: {pii}"
    assert owners == {"Ana Lopez", "Bo Berg"}, owners
    assert {"Commerce", "Customer"} <= domains, domains


def test_a_failure_after_the_first_write_rolls_back_the_whole_file(tmp_db, monkeypatch):
    def broken_reindex(con, product_ids=None):
        raise RuntimeError("disk on fire")

    with store.connect(tmp_db) as con:
        ingest_paths(con, [PROFILES])
        before = counts(con)
        monkeypatch.setattr(search, "reindex", broken_reindex)
        report = ingest_paths(con, [ORDERS_V1])
        after = counts(con)
    outcome = one(report)
    assert report.rejected and "disk on fire" in outcome.reason, \
        f"a crash inside the transaction must be reported per file: {report.to_json()}"
    assert before == after, f"the contract row written before the crash must be rolled back: {before} -> {after}"


# --- rejections -----------------------------------------------------------------------------

BAD_FILES = {
    "broken.yaml": (b"apiVersion: v3.1.0\nkind: [DataContract\n", "not valid YAML at line"),
    "tabs.yaml": (b"apiVersion: v3.1.0\n\tkind: DataContract\n", "not valid YAML"),
    "list.yaml": (b"- apiVersion: v3.1.0\n- kind: DataContract\n", "top level is list"),
    "scalar.yaml": (b"just a sentence\n", "top level is str"),
    "number.yml": (b"42\n", "top level is int"),
    "empty.yaml": (b"", "no YAML document"),
    "comments-only.yaml": (b"# nothing here\n", "no YAML document"),
    "not-a-contract.yaml": (b"name: shopping list\nitems: [milk, eggs]\n", "not a data contract"),
    "not-a-contract.json": (b'{"name": "a JSON file", "items": [1, 2]}', "not a data contract"),
    "binary.yaml": (bytes(range(256)) * 4, "not UTF-8"),
    "unknown-version.yaml": (b"apiVersion: v9.9.9\nkind: DataContract\nid: x\nversion: 1.0.0\nstatus: active\n",
                             "unsupported apiVersion 'v9.9.9'"),
    "numeric-version.yaml": (b"apiVersion: 3.1\nkind: DataContract\nid: x\nversion: 1.0.0\nstatus: active\n",
                             "unsupported apiVersion 3.1"),
    "no-api-version.yaml": (b"kind: DataContract\nid: x\nversion: 1.0.0\nstatus: active\n", "apiVersion: missing"),
    "wrong-kind.yaml": (b"apiVersion: v3.1.0\nkind: DataProduct\nid: x\nversion: 1.0.0\nstatus: active\n", "kind"),
    "no-id.yaml": (b"apiVersion: v3.1.0\nkind: DataContract\nversion: 1.0.0\nstatus: active\n",
                   "'id' is a required property"),
    "multi-document.yaml": (b"apiVersion: v3.1.0\n---\napiVersion: v3.1.0\n", "not valid YAML"),
    "notes.txt": (b"apiVersion: v3.1.0\n", "unsupported file type .txt"),
    "unhashable-key.yaml": (b"? [a, b]\n: value\n", "not valid YAML"),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_bad_file_is_rejected_with_a_reason(tmp_path, tmp_db, name):
    content, fragment = BAD_FILES[name]
    path = tmp_path / name
    path.write_bytes(content)
    with store.connect(tmp_db) as con:
        before = counts(con)
        report = ingest_paths(con, [path])
        after = counts(con)
    outcome = one(report)
    assert report.rejected, f"{name} must be rejected: {report.to_json()}"
    assert outcome.file == str(path), f"the rejection must name the file: {outcome.file}"
    assert fragment in outcome.reason, f"{name}: reason should contain {fragment!r}, got {outcome.reason!r}"
    assert "internal error" not in outcome.reason, f"{name}: rejected by a crash: {outcome.reason}"
    assert before == after, f"rejected {name} wrote rows"


def test_missing_path_is_rejected_and_the_rest_goes_on(tmp_path, tmp_db):
    missing = tmp_path / "nowhere" / "contract.yaml"
    with store.connect(tmp_db) as con:
        report = ingest_paths(con, [missing, ORDERS_V1])
    assert [r.file for r in report.rejected] == [str(missing)], report.to_json()
    assert "no such file or directory" in report.rejected[0].reason, report.rejected[0].reason
    assert [a.id for a in report.accepted] == ["commerce-orders"], "the other path must still be ingested"


# --- the CLI report and exit codes -----------------------------------------------------------

def run_cli(capsys, *argv) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def test_json_report_is_one_object_with_the_documented_fields(tmp_path, tmp_db, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a list\n")
    warned = SHARED_FIXTURES / "odcs" / "bitol-odcs__data-types__all-data-types.odcs.yaml"
    paths = [str(ORDERS_V1), str(bad)] + ([str(warned)] if warned.exists() else [])
    code, out, _ = run_cli(capsys, "ingest", *paths, "--db", str(tmp_db), "--json")
    report = json.loads(out)  # raises if stdout holds anything but one JSON document
    assert isinstance(report, dict) and set(report) == {"accepted", "rejected", "warnings"}, \
        f"--json prints one object with accepted/rejected/warnings: {out[:300]}"
    assert code == 1, f"exit 1 when anything was rejected, got {code}"
    for item in report["accepted"]:
        assert {"file", "id", "version"} <= set(item), f"accepted items carry file, id, version: {item}"
    assert {"file": str(bad), "reason": report["rejected"][0]["reason"]} == report["rejected"][0], \
        f"rejected items are {{file, reason}}: {report['rejected']}"
    assert report["accepted"][0] == report["accepted"][0] | {"file": str(ORDERS_V1), "id": "commerce-orders",
                                                              "version": "1.0.0"}, report["accepted"]
    if warned.exists():
        assert report["warnings"] and set(report["warnings"][0]) == {"file", "message"}, report["warnings"]
        assert "v3.1.0" in report["warnings"][0]["message"], report["warnings"]


def test_exit_codes(tmp_path, tmp_db, capsys):
    code, out, _ = run_cli(capsys, "ingest", str(ORDERS_V1), "--db", str(tmp_db))
    assert code == 0, f"nothing rejected -> exit 0, got {code}: {out}"
    assert "accepted" in out and re.search(r"1 accepted, \d+ warnings, 0 rejected", out), \
        f"readable summary expected: {out}"
    code, out, _ = run_cli(capsys, "ingest", str(ORDERS_V1), "--db", str(tmp_db))
    assert code == 0 and "unchanged" in out, f"re-ingest is reported unchanged, exit 0: {code} {out}"
    code, out, _ = run_cli(capsys, "ingest", str(tmp_path / "missing.yaml"), "--db", str(tmp_db))
    assert code == 1 and "rejected" in out and "no such file" in out, f"a rejection -> exit 1: {code} {out}"
    code, _, err = run_cli(capsys, "ingest", "--db", str(tmp_db))
    assert code == 2 and "PATH" in err, f"no paths is a usage error -> exit 2 with usage: {code} {err}"
    code, _, err = run_cli(capsys, "ingest", str(ORDERS_V1), "--no-such-option")
    assert code == 2 and "unrecognized arguments" in err, f"unknown option -> exit 2: {code} {err}"


# --- robustness: other producers' files ------------------------------------------------------

WEIRD_VALUES = [None, 0, -1, 2.5, True, [], {}, "", "ünïcødé ✓ 数据 🚀", "2022-10-03", "\u202eRTL",
                10**30, ["a", 1, None], {"k": [1, {"z": None}]}, "x" * 200_000]


def _paths(node, prefix=()):
    yield prefix
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in children:
        yield from _paths(value, (*prefix, key))


def mutate(document: dict, rng: random.Random) -> dict:
    """Drop keys, change types, nest deeply, inject huge or odd strings and non-string keys."""
    document = copy.deepcopy(document)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(document) if p]
        if not paths:
            break
        path = rng.choice(paths)
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        op = rng.choice(["drop", "drop", "type", "type", "nest", "rekey"])
        if op == "drop":
            del parent[key]
        elif op == "type":
            parent[key] = copy.deepcopy(rng.choice(WEIRD_VALUES))
        elif op == "nest":
            value = "leaf"
            for _ in range(rng.choice([3, 20, 40])):
                value = [value] if rng.random() < 0.5 else {"n": value}
            parent[key] = value
        elif op == "rekey" and isinstance(parent, dict):
            parent[rng.choice([1, None, 2.5, True, "ключ"])] = parent.pop(key)
    return document


def special_cases() -> dict[str, str]:
    head = "apiVersion: v3.1.0\nkind: DataContract\nid: weird\nversion: 1.0.0\nstatus: active\n"
    laughs = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    for i in range(1, 12):
        name, prev = chr(ord("a") + i), chr(ord("a") + i - 1)
        laughs += f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    nested_property = {"name": "leaf", "logicalType": "string"}
    for level in range(15):  # deep but legal: nested object properties (exponential in stock jsonschema)
        nested_property = {"name": f"level{level}", "logicalType": "object", "properties": [nested_property]}
    return {
        "billion-laughs": head + "customProperties:\n  - property: bomb\n    value:\n"
                          + "".join(f"      {line}\n" for line in laughs.splitlines()),
        "laughs-at-root": head + laughs,
        "cyclic-alias": head + "schema: &s\n  - name: t\n    properties: *s\n",
        "cyclic-mapping": head + "description: &d {purpose: x, usage: *d}\n",
        "deep-flow-nesting": head + "tags: " + "[" * 100_000 + "]" * 100_000 + "\n",
        "deep-block-nesting": head + "customProperties:\n" + "".join(
            "  " * (i + 1) + "- \n" for i in range(500)),
        "duplicate-keys": head + "id: weird-again\nstatus: draft\nstatus: active\n",
        "anchors-legit": head + "tags: &t [a, b]\nschema:\n  - name: t1\n    tags: *t\n  - name: t2\n    tags: *t\n",
        "nested-properties-15": head + yaml.safe_dump({"schema": [{"name": "t", "properties": [nested_property]}]}),
        "unicode-everywhere": head.replace("id: weird", "id: ид-数据-🚀") + "name: \"Ünïcødé ✓ 数据 \\u202e\"\n"
                              "dataProduct: Données clients 🚀\ndomain: Κύριος\n",
        "huge-string": head + "name: " + "A" * 2_000_000 + "\n",
        "control-chars": head + "name: \"bell \\a nul \\0\"\n",
        "bom-and-crlf": "\ufeff" + head.replace("\n", "\r\n"),
        "json-contract": json.dumps({"apiVersion": "v3.1.0", "kind": "DataContract", "id": "json-one",
                                     "version": "1.0.0", "status": "active"}),
        "integer-keys": head + "1: one\n2.5: two\nnull: three\n",
        "apiversion-list": "apiVersion: [v3.1.0]\nkind: DataContract\n",
        "apiversion-mapping": "apiVersion: {v: 3}\nkind: DataContract\n",
        "kind-only": "kind: DataContract\n",
        "tagged-python-object": head + "name: !!python/object/apply:os.system ['echo pwned']\n",
        "binary-tag": head + "name: !!binary aGVsbG8=\n",
        "set-tag": head + "tags: !!set {a, b}\n",
        "odd-custom-values": head + "customProperties:\n  - property: blob\n    value: !!binary aGVsbG8=\n"
                             "  - property: set\n    value: !!set {a, b}\n"
                             "  - property: nested\n    value: {a: [1, {b: null}]}\n",
    }


def mutated_variants(count: int, seed: int = 20261122) -> dict[str, str]:
    rng = random.Random(seed)
    small = sorted(p for p in (SHARED_FIXTURES / "odcs").glob("bitol-odcs__*.yaml")
                   if p.stat().st_size < 20_000)
    sources = [odcs.load_yaml(p.read_text()) for p in small]
    variants = {}
    for i in range(count):
        document = mutate(sources[i % len(sources)], rng)
        text = yaml.safe_dump(document, allow_unicode=bool(i % 2), sort_keys=False, width=10**9)
        if i % 5 == 0:  # a duplicated top-level key, as hand-edited files have
            top = [line for line in text.splitlines() if line and not line.startswith((" ", "-"))]
            text += (rng.choice(top) + "\n") if top else ""
        variants[f"mutant-{i:03d}"] = text
    return variants


def test_no_file_escapes_the_rule(shared_fixtures, tmp_path, tmp_db):
    files = {**special_cases(), **mutated_variants(20)}
    folder = tmp_path / "others"
    folder.mkdir()
    for name, text in files.items():
        (folder / f"{name}.{'json' if name.startswith('json') else 'yaml'}").write_text(text, encoding="utf-8")
    started = time.perf_counter()
    with store.connect(tmp_db) as con:
        report = ingest_paths(con, [folder])  # must not raise, whatever the files hold
        stored = {r[0] for r in con.execute("SELECT contract_id FROM contracts").fetchall()}
    elapsed = time.perf_counter() - started

    outcomes = [a.file for a in report.accepted] + [r.file for r in report.rejected]
    assert sorted(outcomes) == sorted(str(p) for p in folder.iterdir()), \
        "every file must end accepted (maybe with a warning) or rejected, exactly once"
    crashes = [(Path(r.file).name, r.reason) for r in report.rejected if "internal error" in r.reason]
    assert not crashes, f"files rejected by a crash instead of the rule: {crashes}"
    assert all(r.reason.strip() for r in report.rejected), "every rejection carries a reason"
    assert {a.id for a in report.accepted} == stored, "accepted files are stored, rejected ones are not"
    assert elapsed < 120, f"the batch took {elapsed:.0f} s: a file is pathological for the ingester"

    by_name = {Path(r.file).stem: r.reason for r in report.rejected}
    accepted = {Path(a.file).stem for a in report.accepted}
    for bomb in ("billion-laughs", "laughs-at-root"):
        assert "alias bomb" in by_name.get(bomb, ""), f"{bomb}: {by_name.get(bomb)}"
    for cyclic in ("cyclic-alias", "cyclic-mapping"):
        assert "cyclic" in by_name.get(cyclic, ""), f"{cyclic}: {by_name.get(cyclic)}"
    for deep in ("deep-flow-nesting", "deep-block-nesting"):
        assert "nested deeper than" in by_name.get(deep, ""), f"{deep}: {by_name.get(deep)}"
    assert "python/object" in by_name.get("tagged-python-object", ""), "arbitrary Python tags are refused"
    assert {"anchors-legit", "duplicate-keys", "nested-properties-15", "unicode-everywhere",
            "huge-string", "bom-and-crlf", "json-contract"} <= accepted, \
        f"legal files must be accepted: {[(k, v) for k, v in by_name.items() if not k.startswith('mutant')]}"


def test_bombs_are_refused_before_they_cost_anything():
    cases = special_cases()
    for name in ("billion-laughs", "laughs-at-root", "deep-flow-nesting", "cyclic-alias"):
        # CPU time of this process, not wall time: the refusal's own cost, whatever else the
        # machine runs (a bomb expanded would cost minutes of CPU and gigabytes).
        started = time.process_time()
        with pytest.raises(odcs.ContractError):
            odcs.load_yaml(cases[name])
        assert time.process_time() - started < 2, f"{name} took too long to refuse"


def test_fast_validator_agrees_with_python_jsonschema(shared_fixtures):
    """jsonschema-rs is the gate, python-jsonschema the reference: same verdict on every
    official example, negative test and mutant, under every schema version."""
    from jsonschema import Draft201909Validator

    odcs_dir = shared_fixtures / "odcs"
    documents = [odcs.load_yaml(p.read_text()) for p in sorted(odcs_dir.glob("*negative-tests*.yaml"))]
    documents += [odcs.load_yaml(p.read_text()) for p in sorted(odcs_dir.glob("bitol-odcs__*.yaml"))
                  if p.stat().st_size < 8_000]
    documents += [odcs.load_yaml(t) for t in mutated_variants(4, seed=7).values()]
    for version in odcs.schema_sources():
        stock = Draft201909Validator(odcs._validator(version).schema,
                                     format_checker=Draft201909Validator.FORMAT_CHECKER)
        for document in documents:
            expected = stock.is_valid(document)
            assert odcs.is_valid(version, document) == expected, (
                f"{version}: jsonschema-rs says {'invalid' if expected else 'valid'} where python-jsonschema "
                f"says {'valid' if expected else 'invalid'}: {str(document)[:120]}")


def test_load_yaml_builds_what_pyyaml_builds(shared_fixtures):
    """load_yaml's own builder is a shortcut: every document it accepts must equal PyYAML's
    SafeLoader reading (timestamps kept as strings), anchors, odd scalars and mutants included."""
    import yaml

    texts = {p.name: p.read_text() for p in (shared_fixtures / "odcs").glob("*.yaml")}
    texts.update({p.name: p.read_text() for p in (Path(__file__).parent / "fixtures").rglob("*.yaml")})
    texts.update(mutated_variants(30, seed=11))
    texts.update(special_cases())
    compared = 0
    for name, text in texts.items():
        try:
            ours = odcs.load_yaml(text)
        except (odcs.ContractError, yaml.YAMLError):
            continue  # refused: the refusal tests above cover these
        reference = yaml.load(text, Loader=safe_yaml.StringDatesLoader)  # noqa: S506 - SafeLoader subclass
        assert repr(ours) == repr(reference), f"{name}: load_yaml differs from PyYAML"
        compared += 1
    assert compared > 60, f"only {compared} documents compared"
