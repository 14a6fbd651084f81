"""SLOs: compliance over 7/30/90 days, error budget left, breach timeline — worst first.

Layout only: every number comes from checks.slo (stored check runs and OpenLineage runs).
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from catalog.store import StoreError
from checks import slo
from ui.auth import page_user
from ui.db import conn, db_path
from ui.tables import fitting_config
from ui.tables import shown as shown_frame


@st.cache_data(ttl=10, show_spinner=False)
def _slos(db: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    with conn(db) as con:
        observed = slo.observations(con)
        return slo.compliance(con, frame=observed), slo.breaches(con, frame=observed)


def headline(table: pd.DataFrame) -> None:
    missed = table[~table["met"].astype(bool)]
    breaching = table[table["breaching_now"].astype(bool)]
    if missed.empty:
        st.success(f"All {len(table)} SLOs meet their target over the last {slo.BUDGET_WINDOW} days.")
    else:
        st.error(f"{len(missed)} of {len(table)} SLOs miss their target over the last {slo.BUDGET_WINDOW} days "
                 f"({missed['product_id'].nunique()} products); {len(breaching)} are breaching now.")
    c1, c2, c3 = st.columns(3)
    c1.metric("SLOs measured", len(table))
    c2.metric("Missing target (30 d)", len(missed))
    c3.metric("Breaching now", len(breaching))


def compliance_chart(table: pd.DataFrame) -> None:
    worst = (table.groupby("product_id")["compliance_30d"].min().sort_values().reset_index())
    worst["compliance"] = worst["compliance_30d"] * 100
    fig = px.bar(worst, x="compliance", y="product_id", orientation="h", range_x=[0, 100],
                 title="Worst SLO per product: compliance over 30 days (%)")
    fig.update_layout(height=140 + 36 * len(worst), margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      yaxis={"autorange": "reversed", "title": ""}, xaxis_title="% of observations good")
    st.plotly_chart(fig, width="stretch")


def slo_table(table: pd.DataFrame) -> None:
    st.subheader("Every SLO, worst error budget first")
    shown = table.assign(**{f"compliance_{w}d": table[f"compliance_{w}d"] * 100 for w in slo.WINDOWS},
                         target=table["target"] * 100, budget_left=table["budget_left"] * 100)
    # A window without observations yet reads "—" (its progress bar becomes text).
    view = shown_frame(shown[["product_id", "slo", "element", "objective", "target", "compliance_7d",
                              "compliance_30d", "compliance_90d", "budget_left", "breaching_now", "observations",
                              "last_observed"]])
    st.dataframe(view, hide_index=True, width="stretch", column_config=fitting_config(view, {
                     "product_id": "Product", "slo": "SLO", "element": "What", "objective": "Objective",
                     "target": st.column_config.NumberColumn("Target %", format="%.1f"),
                     "compliance_7d": st.column_config.ProgressColumn("7 d %", min_value=0, max_value=100,
                                                                      format="%.1f"),
                     "compliance_30d": st.column_config.ProgressColumn("30 d %", min_value=0, max_value=100,
                                                                       format="%.1f"),
                     "compliance_90d": st.column_config.ProgressColumn("90 d %", min_value=0, max_value=100,
                                                                       format="%.1f"),
                     "budget_left": st.column_config.NumberColumn(
                         "Error budget left %", format="%.0f",
                         help="100 = untouched, 0 = spent, negative = overspent (30 days)"),
                     "breaching_now": st.column_config.CheckboxColumn("Breaching now"),
                     "last_observed": st.column_config.TextColumn("Last observed (UTC)"),
                 }))


def breach_timeline(breaches: pd.DataFrame) -> None:
    st.subheader("Breach timeline")
    if breaches.empty:
        st.caption("No breaches in the last 90 days.")
        return
    # A breach seen once still gets a visible bar: it lasted at least until the next observation.
    frame = breaches.assign(what=breaches["product_id"] + " · " + breaches["slo"] + " · " + breaches["element"],
                            until=breaches["ended"] + pd.Timedelta(hours=12),
                            state=breaches["ongoing"].map({True: "ongoing", False: "recovered"}))
    fig = px.timeline(frame, x_start="started", x_end="until", y="what", color="state",
                      color_discrete_map={"ongoing": "#b91c1c", "recovered": "#b45309"},
                      hover_data={"observations": True, "measured": True, "until": False})
    fig.update_layout(height=140 + 30 * frame["what"].nunique(), margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      yaxis_title="", legend_title_text="")
    st.plotly_chart(fig, width="stretch")
    st.dataframe(shown_frame(breaches), hide_index=True, width="stretch", column_config={
        "started": st.column_config.TextColumn("From (UTC)"),
        "ended": st.column_config.TextColumn("Last bad observation (UTC)"),
    })


def main() -> None:
    page_user("slos")
    st.title("SLOs")
    st.caption("Freshness, completeness, availability and run latency per product, from the contracts' "
               "slaProperties and platform defaults, evaluated over the stored check runs and lineage runs.")
    try:
        table, breaches = _slos(db_path())
    except StoreError as exc:
        st.error(f"Cannot open the catalog: {exc}")
        return
    if table.empty:
        st.info("No SLO observations yet: run the checks (`python -m checks run --all`) or ingest "
                "OpenLineage run events.")
        return
    wanted = st.query_params.get("product")
    if wanted and wanted in set(table["product_id"]):
        table = table[table["product_id"] == wanted]
        breaches = breaches[breaches["product_id"] == wanted]
        st.text(f"Showing product {wanted}")
    headline(table)
    compliance_chart(table)
    slo_table(table)
    breach_timeline(breaches)


main()
