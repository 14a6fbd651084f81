"""Overview: are we compliant, and where not? (leadership's first screen)."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from catalog import queries
from catalog.store import StoreError
from ui.auth import page_user
from ui.db import conn, db_path
from ui.status import STATUS_COLOURS, label
from ui.text import md, md_join, plotly_text, url_param

_ORDER = ["failed", "error", "warning", "passed", "skipped", "not checked"]
_COLOURS = {**STATUS_COLOURS, "not checked": "#d1d5db"}


@st.cache_data(ttl=5, show_spinner=False)
def _posture(db: str) -> tuple[dict, pd.DataFrame]:
    with conn(db) as con:
        return queries.stats(con), queries.compliance_by_product(con)


def headline(posture: pd.DataFrame) -> None:
    checked = posture[posture["status"].notna()]
    failing = checked[checked["status"].isin(["failed", "error"])]
    warning = checked[checked["status"] == "warning"]
    if checked.empty:
        st.info("No checks have run yet. Run them on the **Checks** page, or headless: "
                "`python -m checks run --all`.")
    elif failing.empty:
        st.success(f"All {len(checked)} checked products pass their contracts and policies"
                   + (f" ({len(warning)} with warnings)." if len(warning) else "."))
    else:
        st.error(f"Not compliant: {len(failing)} of {len(checked)} checked products fail "
                 f"({md_join(failing['name'].head(5))}{'…' if len(failing) > 5 else ''}).")
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Products", len(posture))
    c2.metric("Passing", int((checked["status"] == "passed").sum()))
    c3.metric("Failing", len(failing))
    c4.metric("Never checked", int(posture["status"].isna().sum()))


def by_domain_chart(posture: pd.DataFrame) -> None:
    # Domain names come from contracts; plotly would draw their <a href> as a link.
    counts = (posture.assign(status=posture["status"].fillna("not checked"),
                             domain=posture["domain"].map(plotly_text))
              .groupby(["domain", "status"]).size().reset_index(name="products"))
    fig = px.bar(counts, x="products", y="domain", color="status", orientation="h",
                 category_orders={"status": _ORDER}, color_discrete_map=_COLOURS,
                 title="Products by latest check status, per domain")
    fig.update_layout(height=120 + 40 * counts["domain"].nunique(), margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      legend_title_text="", yaxis_title="", xaxis_title="products")
    st.plotly_chart(fig, width="stretch")


def where_not(posture: pd.DataFrame) -> None:
    problems = posture[posture["status"].isin(["failed", "error", "warning"])]
    st.subheader("Where not")
    if problems.empty:
        st.caption("Nothing failing or warning in the latest checks.")
        return
    view = problems.assign(
        status=problems["status"].map(label),
        link=["/catalog?product=" + url_param(p) for p in problems["product_id"]],
        checks_link=["/checks?product=" + url_param(p) for p in problems["product_id"]],
    )[["status", "link", "domain", "failing", "warnings", "failing_kinds", "checked_at", "checks_link"]]
    st.dataframe(view, hide_index=True, width="stretch", column_config={
        "link": st.column_config.LinkColumn("Product", display_text=r"product=(.*)$"),
        "checks_link": st.column_config.LinkColumn("Results", display_text="open results"),
        "failing": st.column_config.NumberColumn("Failing checks"),
        "failing_kinds": "Kinds of failure",
        "checked_at": st.column_config.DatetimeColumn("Checked", format="YYYY-MM-DD HH:mm"),
    })


def main() -> None:
    page_user("overview")  # refuses (and stops) a role that may not see this page
    st.title("Overview")
    st.caption("Are we compliant, and where not? Latest check results of every data product.")
    try:
        stats, posture = _posture(db_path())
    except StoreError as exc:
        st.error(f"Cannot open the catalog: {md(exc)}")
        return
    if stats["products"] == 0:
        st.info("The mesh is empty. Seed the demo with `python -m sample_data seed`, or ingest contracts "
                "with `python -m catalog ingest path/to/contracts/`.")
        return
    headline(posture)
    left, right = st.columns([3, 2])
    with left:
        where_not(posture)
    with right:
        by_domain_chart(posture)
    k1, k2, k3 = st.columns(3)
    k1.metric("Domains", stats["domains"])
    k2.metric("Contracts", stats["contracts"])
    k3.metric("PII columns declared", stats["pii_columns"])


main()
