"""Fairness: bias audits of the models, by group and across versions, in words legal can read."""

from __future__ import annotations

import sys
from pathlib import Path

# AppTest.from_file and `streamlit run views/...` put views/ first on sys.path, where
# views/checks_page.py and views/catalog_page.py would shadow the checks and catalog packages in a
# fresh interpreter: the project root goes first.
_ROOT = str(Path(__file__).resolve().parent.parent)
if _ROOT not in sys.path[:1]:
    sys.path.insert(0, _ROOT)

import json  # noqa: E402 - after the sys.path fix

import pandas as pd  # noqa: E402 - after the sys.path fix
import plotly.express as px  # noqa: E402 - after the sys.path fix
import plotly.graph_objects as go  # noqa: E402 - after the sys.path fix
import streamlit as st  # noqa: E402 - after the sys.path fix

from catalog.store import StoreError  # noqa: E402 - after the sys.path fix
from checks import fairness, model_checks  # noqa: E402 - after the sys.path fix
from ui.auth import page_user  # noqa: E402 - after the sys.path fix
from ui.db import conn, db_path  # noqa: E402 - after the sys.path fix
from ui.status import STATUS_COLOURS, badge  # noqa: E402 - after the sys.path fix
from ui.tables import fitting_config, shown  # noqa: E402 - after the sys.path fix
from ui.untrusted_markdown import plain  # noqa: E402 - after the sys.path fix

METRIC_LABELS = {"selection_rate": "Selection rate", "accuracy": "Accuracy", "tpr": "True positive rate",
                 "fpr": "False positive rate", "precision": "Precision"}
# Which policy ratio bounds which metric's band (the disparity the metric feeds).
BAND_KEY = {"selection_rate": "dp_ratio", "tpr": "eo_ratio", "fpr": "eo_ratio"}


@st.cache_data(ttl=5, show_spinner=False)
def _history(db: str) -> pd.DataFrame:
    with conn(db) as con:
        return model_checks.fairness_history(con)


def _undefined_text(undefined: dict) -> str:
    """Metrics that could not be computed, grouped by reason (one reason often covers four)."""
    by_reason: dict[str, list[str]] = {}
    for metric, reason in undefined.items():
        by_reason.setdefault(reason, []).append(metric)
    return "; ".join(f"{', '.join(metrics)}: {reason}" for reason, metrics in by_reason.items())


def by_group_frame(diagnostics: dict) -> pd.DataFrame:
    rows = []
    for row in diagnostics.get("by_group", []):
        group = ", ".join(f"{k}={'null' if v is None else v}" for k, v in row["group"].items())
        rows.append({"group": group, "count": row["count"], "scored": row.get("scored", True),
                     **{m: row.get(m) for m in METRIC_LABELS},
                     "undefined": _undefined_text(row.get("undefined") or {})})
    return pd.DataFrame(rows, columns=["group", "count", "scored", *METRIC_LABELS, "undefined"])


def metric_chart(groups: pd.DataFrame, overall: dict, thresholds: dict, metric: str) -> go.Figure:
    """Bars per group; the overall value as a line; the band the policy ratio allows (from
    `ratio x best group` up to the best group), so a bar below the band is a breach."""
    shown = groups.assign(value=pd.to_numeric(groups[metric], errors="coerce"),
                          scoring=groups["scored"].map({True: "scored", False: "too small: not scored"}))
    fig = px.bar(shown, x="group", y="value", color="scoring", text_auto=".3f",
                 color_discrete_map={"scored": "#2563eb", "too small: not scored": "#9ca3af"},
                 labels={"value": METRIC_LABELS[metric], "group": ""},
                 title=f"{METRIC_LABELS[metric]} by group")
    if overall.get(metric) is not None:
        fig.add_hline(y=overall[metric], line_dash="dash", line_color="#111827",
                      annotation_text=f"overall {overall[metric]:.3f}", annotation_position="top left")
    limit = thresholds.get(BAND_KEY.get(metric, ""))
    scored = shown.loc[shown["scored"], "value"].dropna()
    if limit is not None and not scored.empty and scored.max() > 0:
        top = float(scored.max())
        fig.add_hrect(y0=limit * top, y1=top, fillcolor="#16a34a", opacity=0.12, line_width=0,
                      annotation_text=f"within {limit:g} x the highest group", annotation_position="bottom right")
    fig.update_layout(height=380, margin={"l": 10, "r": 10, "t": 50, "b": 10}, legend_title_text="")
    return fig


def versions_chart(history: pd.DataFrame, thresholds: dict) -> go.Figure:
    frame = history.assign(ratio=pd.to_numeric(history["measured"], errors="coerce"),
                           audited=pd.to_datetime(history["finished_at"]))
    fig = px.line(frame, x="audited", y="ratio", color="model_version", markers=True,
                  labels={"ratio": "Demographic parity ratio", "audited": "audited at", "model_version": "version"},
                  title="Demographic parity ratio across model versions")
    if "dp_ratio" in thresholds:
        fig.add_hline(y=thresholds["dp_ratio"], line_dash="dot", line_color=STATUS_COLOURS["failed"],
                      annotation_text=f"threshold {thresholds['dp_ratio']:g}")
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 50, "b": 10}, yaxis_range=[0, 1.05])
    return fig


def sizes_chart(groups: pd.DataFrame, min_size: int) -> go.Figure:
    fig = px.bar(groups, x="group", y="count", title="Group sizes", labels={"group": "", "count": "rows"},
                 color=groups["scored"].map({True: "scored", False: "too small: not scored"}),
                 color_discrete_map={"scored": "#2563eb", "too small: not scored": "#9ca3af"})
    fig.add_hline(y=min_size, line_dash="dot", annotation_text=f"minimum {min_size}")
    fig.update_layout(height=320, margin={"l": 10, "r": 10, "t": 50, "b": 10}, legend_title_text="")
    return fig


def audit_panel(latest: pd.Series, history: pd.DataFrame) -> None:
    try:
        diagnostics = json.loads(latest["diagnostics"] or "{}")
    except ValueError:
        diagnostics = {}
    if not diagnostics.get("by_group"):
        st.error(f"The latest audit could not run: {plain(latest['reason'])}")
        return
    thresholds = diagnostics.get("thresholds") or {}
    st.markdown(f"### {plain(diagnostics.get('summary', ''))}")
    st.markdown(f"{badge(latest['status'])} — {plain(latest['reason'])}")
    st.caption(f"Version {plain(latest['model_version'])} · {diagnostics.get('rows', 0):,} predictions · "
               f"sensitive feature(s): {plain(', '.join(diagnostics.get('features', [])))} · "
               f"policy: {plain(diagnostics.get('policy_source', 'default'))} · audited "
               f"{pd.Timestamp(latest['finished_at']):%Y-%m-%d %H:%M} UTC")
    disparities = diagnostics.get("disparities", {})
    cols = st.columns(4)
    for col, name in zip(cols, fairness.DISPARITIES, strict=True):
        value = disparities.get(name)
        col.metric(name.replace("_", " ").capitalize(), "n/a" if value is None else f"{value:.3f}")
    groups = by_group_frame(diagnostics)
    overall = diagnostics.get("overall", {})
    defined = [m for m in METRIC_LABELS if groups[m].notna().any()]
    metric = st.radio("Metric", defined or ["selection_rate"], format_func=METRIC_LABELS.get, horizontal=True,
                      key="fairness_metric")
    st.plotly_chart(metric_chart(groups, overall, thresholds, metric), width="stretch")
    left, right = st.columns(2)
    with left:
        st.plotly_chart(versions_chart(history, thresholds), width="stretch")
    with right:
        st.plotly_chart(sizes_chart(groups, int(diagnostics.get("min_group_size", 1))), width="stretch")
    # A metric no group has (no true labels: accuracy, TPR, FPR) is left out, not a column of dashes.
    table = shown(groups.drop(columns=[m for m in METRIC_LABELS if m in groups and groups[m].isna().all()]))
    st.dataframe(table, hide_index=True, width="stretch", column_config=fitting_config(table, {
        m: st.column_config.NumberColumn(label, format="%.4f") for m, label in METRIC_LABELS.items()}))
    for note in diagnostics.get("notes", []):
        st.caption(plain(note))


def main() -> None:
    page_user("fairness")
    st.title("Fairness")
    st.caption("Bias audits of the models' predictions: metrics by group, disparities against the "
               "policy thresholds, and how they move across model versions.")
    try:
        history = _history(db_path())
    except StoreError as exc:
        st.error(f"Cannot open the catalog: {exc}")
        return
    if history.empty:
        st.info("No bias audit has run yet. A model card names its predictions dataset under "
                "`meshgov.predictions`; `python -m checks run --all` then audits it. A single file: "
                "`python -m checks bias --data FILE --y-true COL --y-pred COL --sensitive COL`.")
        return
    models = sorted(history["model_id"].dropna().unique())
    wanted = st.query_params.get("model")
    model = st.selectbox("Model", models, index=models.index(wanted) if wanted in models else 0, key="fairness_model")
    st.query_params["model"] = model
    mine = history[history["model_id"] == model]
    audit_panel(mine.iloc[-1], mine)


main()
