"""`python -m checks run`: the CI gate's exit codes, summary and JSON output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from checks import cli
from tests.test_checks_engine_fixtures import build_mesh, orders_frame

PROJECT = Path(__file__).resolve().parents[1]
CLEAN_CONTRACT_FIX = ("    value: 2\n    unit: d", "    value: 100000\n    unit: d")


def _clean_shop(tmp_path: Path) -> Path:
    """The shop contract with data that passes everything (the SLAs made lenient so the
    test does not depend on the wall clock)."""
    text = (PROJECT / "tests/fixtures/checks/shop.yaml").read_text()
    text = text.replace(*CLEAN_CONTRACT_FIX).replace("value: 12\n    unit: hours", "value: 100000\n    unit: d")
    return build_mesh(tmp_path, {"shop": text}, {"orders": orders_frame(clean=True)})


def _cli(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "checks", *args], cwd=PROJECT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(PROJECT)}, timeout=180)
    return proc.returncode, proc.stdout, proc.stderr


def test_checks_cli_exit_0_when_everything_passes(tmp_path, capsys):
    db = _clean_shop(tmp_path)
    code = cli.main(["run", "--product", "shop-orders", "--db", str(db), "--as", "ci"])
    out = capsys.readouterr().out
    assert code == 0, f"clean data must pass the gate:\n{out}"
    assert "0 failed" in out and "triggered by ci" in out, out


def test_checks_cli_exit_1_on_failures_with_one_line_each(tmp_path):
    db = build_mesh(tmp_path, {"shop": "shop.yaml"}, {"orders": orders_frame()})
    code, out, err = _cli("run", "--all", "--db", str(db))
    assert code == 1, f"failures exit 1: {err}"
    lines = out.strip().splitlines()
    assert any(line.startswith("FAILED") and "shop-orders/orders/order_id/primary_key" in line for line in lines)
    assert not any(line.startswith("PASSED") for line in lines), "the summary lists only what did not pass"
    assert "status failed" in lines[-1] or "status error" in lines[-1], lines[-1]


def test_checks_cli_json_is_the_result_model(tmp_path, capsys):
    db = build_mesh(tmp_path, {"shop": "shop.yaml"}, {"orders": orders_frame()})
    code = cli.main(["run", "--all", "--db", str(db), "--json"])
    payload = json.loads(capsys.readouterr().out)
    assert code == 1 and isinstance(payload, list) and payload
    keys = {"check_id", "kind", "target", "status", "reason", "measured", "threshold", "product_id", "dataset",
            "column_name", "diagnostics", "sql", "contract_id", "contract_version", "run_id", "started_at",
            "finished_at", "triggered_by"}
    assert set(payload[0]) == keys, set(payload[0]) ^ keys
    assert len({r["run_id"] for r in payload}) == 1


def test_checks_cli_fail_on_warning(tmp_path, capsys):
    text = (PROJECT / "tests/fixtures/checks/shop.yaml").read_text()
    text = text.replace(*CLEAN_CONTRACT_FIX).replace("value: 12\n    unit: hours", "value: 100000\n    unit: d")
    text = text.replace("mustBeLessThan: 50", "mustBeLessThan: 5")  # amount nulls (10 %): severity warning
    db = build_mesh(tmp_path, {"shop": text}, {"orders": orders_frame(clean=True)})
    assert cli.main(["run", "--all", "--db", str(db)]) == 0, "a warning alone passes the default gate"
    assert "WARNING" in capsys.readouterr().out
    assert cli.main(["run", "--all", "--db", str(db), "--fail-on", "warning"]) == 1, "--fail-on warning stops on it"


def test_checks_cli_exit_2_on_usage_and_engine_errors(tmp_path):
    db = _clean_shop(tmp_path)
    code, _, err = _cli("run", "--product", "nope", "other", "--db", str(db))
    assert code == 2 and "nope" in err and "other" in err, err
    code, _, err = _cli("run", "--all", "--db", str(tmp_path / "missing.duckdb"))
    assert code == 2 and "missing.duckdb" in err and "does not exist" in err, err
    code, _, err = _cli("run", "--db", str(db))
    assert code == 2 and "--product" in err, "scope is required: --product or --all"
    code, _, err = _cli("run", "--all", "--product", "x", "--db", str(db))
    assert code == 2, "--product and --all exclude each other"
    code, _, err = _cli("run", "--all", "--timeout", "0", "--db", str(db))
    assert code == 2 and "--timeout" in err
    assert "Traceback" not in err


def test_checks_cli_engine_fault_is_exit_2_without_traceback(tmp_path, monkeypatch, capsys):
    db = _clean_shop(tmp_path)

    def broken(*args, **kwargs):
        raise RuntimeError("engine broke")

    from checks import runner  # cli imports the engine when it runs, not at import

    monkeypatch.setattr(runner, "run_checks", broken)
    assert cli.main(["run", "--all", "--db", str(db)]) == 2
    assert "engine broke" in capsys.readouterr().err


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_checks_cli_runs_lists_history(tmp_path, capsys, json_flag):
    db = _clean_shop(tmp_path)
    cli.main(["run", "--all", "--db", str(db)])
    capsys.readouterr()
    assert cli.main(["runs", "--db", str(db), *json_flag]) == 0
    out = capsys.readouterr().out
    assert "complete" in out, out


# The planted defects of sample_data/SCENARIO.md, as the checks that must report them.
PLANTED = {
    "commerce-orders/orders/ordered_at/freshness/latency",                # 1 stale product
    "commerce-orders/orders/ordered_at/freshness/frequency",              # 1 stale product
    "product-recommendations/recommendations/product_sku/quality/recommendations_product_sku_nulls",  # 2
    "product-recommendations/contract/compatibility",                     # 3 breaking change
    "fairness:premium-propensity",                                        # 4 bias (the model's bias audit)
    "model-card:rfm-segmenter/bias_risks",                                # 7 model card without bias/risks
    "consent:newsletter-sends/audience/ai_recommendations",               # 5 consent (audience)
    "consent:newsletter-sends/sends/ai_recommendations",                  # 5 consent (sends)
    "pii:newsletter-interactions/interactions/recipient_email",           # 6 unclassified PII
}


def test_checks_seeded_demo_reports_exactly_the_planted_defects(tmp_path):
    from sample_data import generate

    db = tmp_path / "demo.duckdb"
    generate.seed(db)
    code, out, err = _cli("run", "--all", "--db", str(db), "--json")
    assert code == 1, f"the demo has planted defects, so the gate exits 1: {err}"
    results = json.loads(out)
    not_passing = {r["check_id"]: (r["status"], r["reason"]) for r in results if r["status"] != "passed"}
    missing = PLANTED - set(not_passing)
    extra = {cid: v for cid, v in not_passing.items() if cid not in PLANTED}
    assert not missing, f"planted defects not found: {sorted(missing)}"
    assert not extra, f"something else fails in the seeded demo: {extra}"
    assert all(not_passing[cid][0] == "failed" for cid in PLANTED), not_passing


def test_checks_cli_short_timeout_contains_a_runaway_rule(tmp_path):
    hostile = (PROJECT / "tests/fixtures/checks/hostile.yaml").read_text()
    hostile = hostile.replace("__OUT__", str(tmp_path / "out.csv")).replace("__ATTACH__", str(tmp_path / "a.db"))
    db = build_mesh(tmp_path, {"evil": hostile}, {"events": pd.DataFrame({"id": range(3000)})})
    code, out, err = _cli("run", "--all", "--db", str(db), "--timeout", "1", "--json")
    results = {r["check_id"].rsplit("/", 1)[-1]: r for r in json.loads(out)}
    assert code == 1, f"errors make the gate fail: {err}"
    assert results["runaway"]["status"] == "error" and "timed out" in results["runaway"]["reason"]
    assert results["honest"]["status"] == "passed"
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "-5", "soon", "86401"])
def test_checks_cli_timeout_must_be_a_finite_positive_number(value, capsys):
    """'inf' raised an OverflowError in every timer thread; 'nan' was accepted."""
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "--all", f"--timeout={value}"])
    err = capsys.readouterr().err
    assert stop.value.code == 2, f"--timeout {value} is a usage error"
    assert "argument --timeout" in err and value in err and "Traceback" not in err, err
    assert [line for line in err.splitlines() if "error:" in line] == \
        [next(line for line in err.splitlines() if "error:" in line)], "one error line"


def test_checks_cli_runs_limit_is_bounded(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["runs", "--limit", "100000000000000000000"])
    assert stop.value.code == 2 and "--limit" in capsys.readouterr().err
