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
from ui.db import conn, db_path, store_version
from ui.tables import fitting_config
from ui.tables import shown as shown_frame
from ui.text import md

CHART_PRODUCTS = 40  # worst products in the compliance chart (the table below lists more)
TABLE_ROWS = 1000  # rows drawn in a table at catalog scale (100k products: 100k+ SLOs)
TIMELINE_BREACHES = 40  # breaches drawn in the timeline (ongoing first, newest first)


# Recomputed when the store changes, and at least every 5 minutes: the windows move with the clock.
@st.cache_data(ttl=300, show_spinner="Evaluating every SLO over the stored runs…", max_entries=8)
def _slos(db: str, version: tuple) -> tuple[pd.DataFrame, pd.DataFrame]:
    del version  # part of the cache key only
    with conn(db) as con:
        observed = slo.observations(con)
        return slo.compliance(con, frame=observed), slo.breaches(con, frame=observed)


def headline(table: pd.DataFrame) -> None:
    missed = table[~table["met"].astype(bool)]
    breaching = table[table["breaching_now"].astype(bool)]
    if missed.empty:
        st.success(f"All {len(table):,} SLOs meet their target over the last {slo.BUDGET_WINDOW} days.")
    else:
        st.error(f"{len(missed):,} of {len(table):,} SLOs miss their target over the last {slo.BUDGET_WINDOW} days "
                 f"({missed['product_id'].nunique():,} products); {len(breaching):,} are breaching now.")
    c1, c2, c3 = st.columns(3)
    c1.metric("SLOs measured", f"{len(table):,}")
    c2.metric("Missing target (30 d)", f"{len(missed):,}")
    c3.metric("Breaching now", f"{len(breaching):,}")


def compliance_chart(table: pd.DataFrame) -> None:
    per_product = table.groupby("product_id")["compliance_30d"].min().sort_values(kind="stable")
    worst = per_product.head(CHART_PRODUCTS).reset_index()
    worst["compliance"] = worst["compliance_30d"] * 100
    title = "Worst SLO per product: compliance over 30 days (%)"
    if len(per_product) > CHART_PRODUCTS:
        title = f"The {CHART_PRODUCTS} products with the worst SLO (of {len(per_product):,}): compliance over 30 days (%)"
    fig = px.bar(worst, x="compliance", y="product_id", orientation="h", range_x=[0, 100], title=title)
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
                              "last_observed"]].head(TABLE_ROWS))
    if len(table) > TABLE_ROWS:
        st.caption(f"The {TABLE_ROWS:,} SLOs with the least error budget left, of {len(table):,}. "
                   "Type a product id above to see its SLOs.")
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
    drawn = breaches.head(TIMELINE_BREACHES)  # already ongoing first, newest first
    if len(breaches) > TIMELINE_BREACHES:
        st.caption(f"The {TIMELINE_BREACHES} most recent of {len(breaches):,} breaches (ongoing first); "
                   f"the table lists {min(len(breaches), TABLE_ROWS):,}.")
    frame = drawn.assign(what=drawn["product_id"] + " · " + drawn["slo"] + " · " + drawn["element"],
                            until=drawn["ended"] + pd.Timedelta(hours=12),
                            state=drawn["ongoing"].map({True: "ongoing", False: "recovered"}))
    fig = px.timeline(frame, x_start="started", x_end="until", y="what", color="state",
                      color_discrete_map={"ongoing": "#b91c1c", "recovered": "#b45309"},
                      hover_data={"observations": True, "measured": True, "until": False})
    fig.update_layout(height=140 + 30 * frame["what"].nunique(), margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      yaxis_title="", legend_title_text="")
    st.plotly_chart(fig, width="stretch")
    st.dataframe(shown_frame(breaches.head(TABLE_ROWS)), hide_index=True, width="stretch", column_config={
        "started": st.column_config.TextColumn("From (UTC)"),
        "ended": st.column_config.TextColumn("Last bad observation (UTC)"),
    })


def main() -> None:
    page_user("slos")
    st.title("SLOs")
    st.caption("Freshness, completeness, availability and run latency per product, from the contracts' "
               "slaProperties and platform defaults, evaluated over the stored check runs and lineage runs.")
    try:
        db = db_path()
        table, breaches = _slos(db, store_version(db))
    except StoreError as exc:
        st.error(f"Cannot open the catalog: {md(exc)}")
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
    elif table["product_id"].nunique() > CHART_PRODUCTS:
        typed = st.text_input("Product id contains", key="slo_product_filter",
                              placeholder="e.g. customer", help="Narrow the page to the products whose id contains this text")
        if typed.strip():
            table = table[table["product_id"].str.contains(typed.strip(), case=False, regex=False)]
            breaches = breaches[breaches["product_id"].str.contains(typed.strip(), case=False, regex=False)]
            if table.empty:
                st.info(f"No product id with SLOs contains “{md(typed.strip())}”. Clear the filter to see every SLO.")
                return
    headline(table)
    compliance_chart(table)
    slo_table(table)
    breach_timeline(breaches)


main()
