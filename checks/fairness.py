"""Bias audit of a predictions dataset: group metrics in one DuckDB GROUP BY, disparities,
thresholds as policy, and the one result model.

The numbers are fairlearn's (`MetricFrame` with selection_rate, accuracy_score,
true_positive_rate, false_positive_rate, precision_score; `demographic_parity_*`,
`equalized_odds_*` with method="between_groups"), computed from integer counts of one
grouped pass over the finest groups (the intersection of the sensitive features): overall
and per-feature tables are sums of those counts, so the data is read once. Measured at 10M
rows: fairlearn 291 s and 4.9 GB, one GROUP BY well under a second.

Where a denominator is empty (a group with no actual positives has no TPR, no actual
negatives no FPR, no predicted positives no precision) fairlearn/sklearn substitute 0.0
(`confusion_matrix(normalize=...)` zeroes NaN; precision warns and returns 0). A 0 there is
invented, so this module says None and gives the reason, and leaves that group out of the
disparity that needs the metric. Groups smaller than `min_group_size` are reported and
flagged but not scored: a handful of rows makes any ratio look extreme.

Why one module past 400 lines: policy, the grouped audit and the verdict share BiasReport
and the counts-to-metrics rules that tests compare with fairlearn; apart, each would reach
into the others' internals.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import duckdb

from checks import compiler
from checks.result import CheckResult

METRICS = ("selection_rate", "accuracy", "tpr", "fpr", "precision")
DISPARITIES = ("demographic_parity_difference", "demographic_parity_ratio",
               "equalized_odds_difference", "equalized_odds_ratio")
# Policy key -> (disparity, the comparison that passes).
THRESHOLD_KEYS: dict[str, tuple[str, Literal[">=", "<="]]] = {
    "dp_ratio": ("demographic_parity_ratio", ">="),
    "dp_difference": ("demographic_parity_difference", "<="),
    "eo_ratio": ("equalized_odds_ratio", ">="),
    "eo_difference": ("equalized_odds_difference", "<="),
}
# The four-fifths rule of US employment law, the usual default for selection decisions.
DEFAULT_THRESHOLDS = {"dp_ratio": 0.8}
DEFAULT_MIN_GROUP_SIZE = 30
POLICY_FILE = "fairness.toml"
_UNDEFINED = {
    "tpr": "no actual positives (y_true = 1) in the group: TPR is undefined",
    "fpr": "no actual negatives (y_true = 0) in the group: FPR is undefined",
    "precision": "no predicted positives (y_pred = 1) in the group: precision is undefined",
}


class BiasInputError(ValueError):
    """Input the audit cannot use (missing column, non-binary label, no rows); the message
    names the file, column and value."""


# --- policy ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class FairnessPolicy:
    thresholds: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_THRESHOLDS))
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE
    source: str = "default"


def parse_thresholds(text: str) -> dict[str, float]:
    """`dp_ratio=0.8,eo_difference=0.1` -> {"dp_ratio": 0.8, ...}; raises BiasInputError naming
    the bad item."""
    found: dict[str, float] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in THRESHOLD_KEYS:
            raise BiasInputError(f"threshold {item!r}: expected NAME=VALUE with NAME one of "
                                 f"{', '.join(THRESHOLD_KEYS)}")
        try:
            found[key] = float(value)
        except ValueError:
            raise BiasInputError(f"threshold {item!r}: {value.strip()!r} is not a number") from None
        if not math.isfinite(found[key]):
            raise BiasInputError(f"threshold {item!r}: must be a finite number")
    return found


def policy_files() -> list[Path]:
    """`fairness.toml` in the catalog policy folders (checks/policies, then MESHGOV_POLICY_DIR)."""
    from checks.policies import policy_dirs

    return [d / POLICY_FILE for d in policy_dirs() if (d / POLICY_FILE).is_file()]


def load_policy(model: str | None = None, *, files: Sequence[Path] | None = None) -> FairnessPolicy:
    """Thresholds for `model`: `[default]` then `[models."<model>"]` of each policy file, later
    files overriding earlier ones. A file that does not parse raises BiasInputError naming it."""
    thresholds = dict(DEFAULT_THRESHOLDS)
    min_size = DEFAULT_MIN_GROUP_SIZE
    sources = []
    for path in policy_files() if files is None else files:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise BiasInputError(f"fairness policy {path}: {exc}") from None
        sections = [data.get("default", {})]
        if model is not None:
            sections.append(data.get("models", {}).get(model, {}))
        for section in sections:
            if not isinstance(section, dict):
                raise BiasInputError(f"fairness policy {path}: sections must be tables")
            for key, value in section.items():
                if key == "min_group_size":
                    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                        raise BiasInputError(f"fairness policy {path}: min_group_size must be a positive integer")
                    min_size = value
                elif key in THRESHOLD_KEYS:
                    if not isinstance(value, int | float) or isinstance(value, bool):
                        raise BiasInputError(f"fairness policy {path}: {key} must be a number")
                    thresholds[key] = float(value)
                elif key != "predictions":
                    raise BiasInputError(f"fairness policy {path}: unknown key {key!r} "
                                         f"(known: {', '.join(THRESHOLD_KEYS)}, min_group_size)")
        sources.append(str(path))
    return FairnessPolicy(thresholds, min_size, ", ".join(sources) or "default")


# --- the audit -------------------------------------------------------------------------------


@dataclass
class BiasReport:
    features: list[str]
    overall: dict[str, Any]
    by_group: list[dict[str, Any]]               # finest groups (intersection of the features)
    by_feature: dict[str, list[dict[str, Any]]]  # each feature alone (when there are two or more)
    disparities: dict[str, float | None]
    notes: list[str]                             # why a value is None, which groups were not scored
    min_group_size: int
    rows: int
    sql: str = ""


@dataclass
class _Counts:
    n: int = 0
    pred_pos: int = 0
    actual_pos: int = 0
    tp: int = 0
    fp: int = 0
    correct: int = 0

    def add(self, other: _Counts) -> None:
        for name in ("n", "pred_pos", "actual_pos", "tp", "fp", "correct"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


_NO_TRUTH = "no y_true (observed outcome) configured: only the selection rate can be computed"


def _metrics(c: _Counts, has_truth: bool = True) -> tuple[dict[str, Any], dict[str, str]]:
    if not has_truth:
        return ({"count": c.n, "selection_rate": _ratio(c.pred_pos, c.n), "accuracy": None, "tpr": None,
                 "fpr": None, "precision": None}, dict.fromkeys(("accuracy", "tpr", "fpr", "precision"), _NO_TRUTH))
    values = {
        "count": c.n,
        "selection_rate": _ratio(c.pred_pos, c.n),
        "accuracy": _ratio(c.correct, c.n),
        "tpr": _ratio(c.tp, c.actual_pos),
        "fpr": _ratio(c.fp, c.n - c.actual_pos),
        "precision": _ratio(c.tp, c.pred_pos),
    }
    undefined = {m: why for m, why in _UNDEFINED.items() if values[m] is None}
    return values, undefined


def _label_expr(column: str, duck_type: str, *, what: str, source: str) -> tuple[str, str]:
    """(SQL giving TRUE/FALSE/NULL for positive/negative/not binary, SQL that is TRUE for a
    value that is not a binary label)."""
    col = compiler.quote_ident(column)
    family = compiler.data_family(duck_type)
    if family == "boolean":
        return col, "FALSE"
    if family in ("integer", "number"):
        return (f"CASE WHEN {col} = 1 THEN TRUE WHEN {col} = 0 THEN FALSE END",
                f"({col} IS NOT NULL AND {col} NOT IN (0, 1))")
    if family == "string":
        text = f"lower(trim({col}))"
        return (f"CASE WHEN {text} IN ('1', 'true') THEN TRUE WHEN {text} IN ('0', 'false') THEN FALSE END",
                f"({col} IS NOT NULL AND {text} NOT IN ('0', '1', 'true', 'false'))")
    raise BiasInputError(f"{source}: {what} column {column!r} has type {duck_type}; a binary label "
                         "must be boolean, 0/1 or 'true'/'false'")


def audit(con: duckdb.DuckDBPyConnection, relation: str, *, y_true: str | None, y_pred: str,
          sensitive: Sequence[str], min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
          source: str = "the data", timeout_s: float = 300.0) -> BiasReport:
    """Audit `relation` (a table name or a read_parquet(...) expression, trusted SQL).

    Without `y_true` (a deployed model whose outcomes are not observed) only selection rates
    and demographic parity are computed; the rest is None with the reason.
    Raises BiasInputError for a missing column, a non-binary label, nulls in a label, no rows."""
    sensitive = list(dict.fromkeys(sensitive))
    if not sensitive:
        raise BiasInputError("name at least one sensitive feature column")
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()
    except duckdb.Error as exc:
        raise BiasInputError(f"{source}: cannot read: {compiler._error_text(exc)}") from None
    types = {row[0]: row[1] for row in described}
    for what, column in [("y_true", y_true), ("y_pred", y_pred)] + [("sensitive", s) for s in sensitive]:
        if column is not None and column not in types:
            raise BiasInputError(f"{source}: no {what} column {column!r} (columns: {', '.join(types) or 'none'})")
    true_expr, true_bad = ("NULL::BOOLEAN", "FALSE") if y_true is None else \
        _label_expr(y_true, types[y_true], what="y_true", source=source)
    pred_expr, pred_bad = _label_expr(y_pred, types[y_pred], what="y_pred", source=source)
    keys = ", ".join(compiler.quote_ident(s) for s in sensitive)
    # Only what cannot be derived is aggregated (measured: each extra aggregate costs ~10 %
    # at 10M rows): fp = pred_pos - tp, tn = n - actual_pos - fp; the label checks exist only
    # for non-boolean columns.
    aggregates = [
        "count(*)", f"sum(({pred_expr})::INT)", f"sum(({true_expr})::INT)",
        f"sum((({true_expr}) AND ({pred_expr}))::INT)",
        f"count({true_expr})", f"count({pred_expr})",
    ]
    for column, bad in ((y_true, true_bad), (y_pred, pred_bad)):
        if bad == "FALSE":
            aggregates += ["0", "NULL"]
        else:
            aggregates += [f"count_if({bad})", f"any_value({compiler.quote_ident(column)}) FILTER (WHERE {bad})"]
    sql = f"SELECT {keys}, {', '.join(aggregates)}\nFROM {relation}\nGROUP BY {keys} ORDER BY {keys} NULLS LAST"
    try:
        rows = compiler._run_query(con, sql, timeout_s)
    except compiler.QueryTimeout as exc:
        raise BiasInputError(f"{source}: {exc}") from None
    except duckdb.Error as exc:
        raise BiasInputError(f"{source}: {compiler._error_text(exc)}") from None
    k = len(sensitive)
    if not rows:
        raise BiasInputError(f"{source}: no rows: nothing to audit")
    for what, column, valid_at, bad_at in (("y_true", y_true, k + 4, k + 6), ("y_pred", y_pred, k + 5, k + 8)):
        if column is None:
            continue
        bad = sum(row[bad_at] for row in rows)
        if bad:
            example = next(row[bad_at + 1] for row in rows if row[bad_at])
            raise BiasInputError(f"{source}: {what} column {column!r} is not binary: {bad} row(s) hold other "
                                 f"values than 0/1/true/false, e.g. {example!r}")
        nulls = sum(row[k] - row[valid_at] for row in rows)
        if nulls:
            raise BiasInputError(f"{source}: {what} column {column!r} has {nulls} null value(s); "
                                 "a label must be 0 or 1 on every row")
    finest = []
    for row in rows:
        n, pred_pos, actual_pos, tp = (int(v or 0) for v in row[k:k + 4])
        fp = pred_pos - tp
        finest.append((tuple(row[:k]), _Counts(n, pred_pos, actual_pos, tp, fp, tp + (n - actual_pos - fp))))
    return _report(sensitive, finest, min_group_size=min_group_size, sql=sql, has_truth=y_true is not None)


def _report(features: list[str], finest: list[tuple[tuple, _Counts]], *, min_group_size: int,
            sql: str, has_truth: bool = True) -> BiasReport:
    notes: list[str] = []
    total = _Counts()
    for _, counts in finest:
        total.add(counts)
    overall, overall_undefined = _metrics(total, has_truth)
    if not has_truth:
        notes.append(_NO_TRUTH)
    else:
        for metric, why in overall_undefined.items():
            notes.append(f"overall {metric}: {why.replace('in the group', 'in the data')}")

    def table(keyed: list[tuple[tuple, _Counts]], names: list[str]) -> list[dict[str, Any]]:
        out = []
        for key, counts in keyed:
            values, undefined = _metrics(counts, has_truth)
            out.append({"group": dict(zip(names, key, strict=True)), **values,
                        "scored": counts.n >= min_group_size, "undefined": undefined})
        return out

    by_group = table(finest, features)
    by_feature: dict[str, list[dict[str, Any]]] = {}
    if len(features) > 1:
        for i, feature in enumerate(features):
            sums: dict[Any, _Counts] = {}
            for key, counts in finest:
                sums.setdefault(key[i], _Counts()).add(counts)
            by_feature[feature] = table([((value,), counts) for value, counts in
                                          sorted(sums.items(), key=lambda kv: (kv[0] is None, str(kv[0])))], [feature])
    if any(key_has_null for key_has_null in (None in key for key, _ in finest)):
        notes.append("rows with a null sensitive value form their own group (shown as null)")
    small = [g for g in by_group if not g["scored"]]
    if small:
        notes.append(f"{len(small)} group(s) smaller than {min_group_size} rows are reported but not scored: "
                     + "; ".join(f"{group_label(g['group'])} ({g['count']})" for g in small))
    disparities = _disparities([g for g in by_group if g["scored"]], notes, has_truth)
    return BiasReport(features, overall, by_group, by_feature, disparities, notes, min_group_size,
                      total.n, sql)


def _spread(groups: list[dict[str, Any]], metric: str, notes: list[str]) -> tuple[float | None, float | None]:
    """(max - min, min / max) of a metric over the groups where it is defined."""
    left_out = [g for g in groups if g[metric] is None]
    if left_out:
        notes.append(f"{metric} undefined for {', '.join(group_label(g['group']) for g in left_out)} "
                     "(empty denominator): left out of the disparities that use it")
    values = [g[metric] for g in groups if g[metric] is not None]
    if len(values) < 2:
        notes.append(f"{metric}: fewer than two scored groups with a defined value: no disparity")
        return None, None
    low, high = min(values), max(values)
    if high == 0:
        notes.append(f"{metric} is 0 in every scored group: the ratio is undefined (0/0)")
        return high - low, None
    return high - low, low / high


def _disparities(scored: list[dict[str, Any]], notes: list[str], has_truth: bool = True) -> dict[str, float | None]:
    dp_diff, dp_ratio = _spread(scored, "selection_rate", notes)
    if not has_truth:
        return {"demographic_parity_difference": dp_diff, "demographic_parity_ratio": dp_ratio,
                "equalized_odds_difference": None, "equalized_odds_ratio": None}
    tpr_diff, tpr_ratio = _spread(scored, "tpr", notes)
    fpr_diff, fpr_ratio = _spread(scored, "fpr", notes)
    # fairlearn's equalized odds: the worse of the TPR and FPR disparities.
    diffs = [d for d in (tpr_diff, fpr_diff) if d is not None]
    ratios = [r for r in (tpr_ratio, fpr_ratio) if r is not None]
    if (tpr_diff is None) != (fpr_diff is None) or (tpr_ratio is None) != (fpr_ratio is None):
        notes.append("equalized odds computed from the one of TPR/FPR that is defined")
    return {"demographic_parity_difference": dp_diff, "demographic_parity_ratio": dp_ratio,
            "equalized_odds_difference": max(diffs) if diffs else None,
            "equalized_odds_ratio": min(ratios) if ratios else None}


def group_label(group: dict[str, Any]) -> str:
    return ", ".join(f"{k}={'null' if v is None else v}" for k, v in group.items())


def relation_for_file(path: str | Path) -> str:
    """read_parquet/read_csv over a user-named file, by its suffix."""
    text = str(path)
    suffix = Path(text).suffix.lower()
    literal = compiler.sql_literal(text)
    if suffix in (".parquet", ".pq"):
        return f"read_parquet({literal})"
    if suffix in (".csv", ".tsv", ".txt"):
        return f"read_csv({literal}, header = true)"
    raise BiasInputError(f"{path}: unsupported file type {suffix or '(none)'}: expected .csv or .parquet")


def audit_file(path: str | Path, *, y_true: str | None, y_pred: str, sensitive: Sequence[str],
               min_group_size: int = DEFAULT_MIN_GROUP_SIZE, timeout_s: float = 300.0) -> BiasReport:
    from catalog.locations import refusal

    file = Path(path)
    if not file.is_file():
        raise BiasInputError(f"{path}: no such file")
    if refused := refusal(str(file)):
        raise BiasInputError(refused)
    if file.stat().st_size == 0:
        raise BiasInputError(f"{path}: the file is empty")
    relation = relation_for_file(file)
    with compiler.trusted_connection() as con:
        return audit(con, relation, y_true=y_true, y_pred=y_pred, sensitive=sensitive,
                     min_group_size=min_group_size, source=str(path), timeout_s=timeout_s)


# --- verdict -------------------------------------------------------------------------------


def evaluate(report: BiasReport, policy: FairnessPolicy) -> tuple[Literal["passed", "failed", "error"], str]:
    """Status and a reason naming every threshold: failed when one is breached, error when a
    policy metric is undefined (never passed on a number that could not be computed)."""
    breached, undefined, held = [], [], []
    for key, limit in policy.thresholds.items():
        metric, op = THRESHOLD_KEYS[key]
        value = report.disparities.get(metric)
        if value is None:
            undefined.append(f"{metric} is undefined, so {key} {op} {limit:g} cannot be checked")
        elif (value >= limit) if op == ">=" else (value <= limit):
            held.append(f"{metric} {value:.3f} {op} {limit:g}")
        else:
            breached.append(f"{metric} {value:.3f} breaches {key} {op} {limit:g}")
    small = sum(not g["scored"] for g in report.by_group)
    tail = f"; {small} group(s) under {report.min_group_size} rows not scored" if small else ""
    if breached:
        return "failed", "; ".join(breached + undefined + held) + tail
    if undefined:
        return "error", "; ".join(undefined + held) + tail
    return "passed", ("; ".join(held) or "no thresholds set") + tail


def to_json(report: BiasReport, policy: FairnessPolicy | None = None) -> dict[str, Any]:
    """The CLI's --json shape: overall, by_group, disparities, status, reason (NaN -> null)."""
    status, reason = evaluate(report, policy or FairnessPolicy())
    if report.notes:
        reason += " (" + "; ".join(report.notes) + ")"
    return compiler.json_safe({
        "overall": {m: report.overall[m] for m in ("count", *METRICS)},
        "by_group": report.by_group,
        "disparities": report.disparities,
        "status": status,
        "reason": reason,
    })


_PLURAL = {"female": "women", "male": "men", "non_binary": "non-binary people", "f": "women", "m": "men",
           "woman": "women", "man": "men"}


def _people(group: dict[str, Any]) -> str:
    if len(group) == 1:
        value = next(iter(group.values()))
        if isinstance(value, str) and value.lower() in _PLURAL:
            return _PLURAL[value.lower()]
    return f"people in {group_label(group)}"


def summary_sentence(report: BiasReport, policy: FairnessPolicy) -> str:
    """Plain language for legal: who is selected how much less often than whom, and the verdict."""
    scored = [g for g in report.by_group if g["scored"] and g["selection_rate"] is not None]
    if len(scored) < 2:
        return "Fewer than two groups are large enough to compare selection rates."
    low = min(scored, key=lambda g: g["selection_rate"])
    high = max(scored, key=lambda g: g["selection_rate"])
    ratio = report.disparities["demographic_parity_ratio"]
    if ratio is None:
        return "No group is ever selected: the selection-rate ratio is undefined."
    who_low, who_high = _people(low["group"]), _people(high["group"])
    who_low = who_low[0].upper() + who_low[1:]
    less = round((1 - ratio) * 100)
    limit = policy.thresholds.get("dp_ratio")
    verdict = "" if limit is None else (f", below the {limit:g} threshold" if ratio < limit
                                         else f", within the {limit:g} threshold")
    if less == 0:
        return f"{who_low} and {who_high} are selected equally often: ratio {ratio:.2f}{verdict}."
    return f"{who_low} are selected {less} % less often than {who_high}: ratio {ratio:.2f}{verdict}."


def check_result(report: BiasReport, policy: FairnessPolicy, *, check_id: str, target: str,
                 product_id: str | None = None, dataset: str | None = None, model: str | None = None,
                 model_version: str | None = None, started=None) -> CheckResult:
    status, reason = evaluate(report, policy)
    limits = {key: f"{THRESHOLD_KEYS[key][1]} {value:g}" for key, value in policy.thresholds.items()}
    return CheckResult(
        check_id=check_id, kind="fairness", target=target, status=status, reason=reason,
        measured=compiler.json_safe(report.disparities.get("demographic_parity_ratio")),
        threshold=", ".join(f"{k} {v}" for k, v in limits.items()) or None,
        product_id=product_id, dataset=dataset, column_name=", ".join(report.features),
        diagnostics=compiler.json_safe({
            "model": model, "model_version": model_version, "features": report.features,
            "rows": report.rows, "overall": report.overall, "by_group": report.by_group,
            "by_feature": report.by_feature, "disparities": report.disparities, "notes": report.notes,
            "min_group_size": report.min_group_size, "thresholds": policy.thresholds,
            "policy_source": policy.source, "summary": summary_sentence(report, policy)}),
        sql=report.sql.strip(), contract_version=model_version,
        started_at=started or compiler.now_utc(), finished_at=compiler.now_utc())

