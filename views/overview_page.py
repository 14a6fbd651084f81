"""Overview: are we compliant, and where not? (leadership's first screen).

The verdict first, then the KPIs (each opens the products behind it below them: `?show=...`,
or `?domain=...` from the domain scores), the products that need action with every score
component side by side, the score by domain and the trend. No SQL here: checks.posture
computes the components and scores, catalog.queries the store's fingerprint.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from catalog.status import NOT_PASSING
from catalog.store import StoreError
from checks import posture
from ui.auth import page_user
from ui.db import conn, db_path, store_version
from ui.status import STATUS_COLOURS
from ui.text import md, plotly_text, url_param

STALE_CHECK_HOURS = 24  # a product not checked for longer counts as "not checked recently"
VIOLATION_LABELS = {"failed": "Failed checks", "error": "Check errors", "warning": "Warnings"}
OPEN_LINKS = 12
WHERE_NOT_ROWS = 200  # the first screen's table; the KPI lists hold every product
VERDICT_LINES = 5  # worst products named in the verdict; the table lists all  # links to the catalog under a drill-down list (the table holds all of them)
GOOD_SCORE, FAIR_SCORE = 90.0, 70.0  # score bands for the colours (green / amber / red)


# --- loading: one cheap fingerprint per rerun; the posture recomputed only when it changes ----


# SLO windows move with the clock: recompute at least every 5 minutes even when nothing changed.
# One shared read-only copy (cache_resource): cache_data pickled the 100k-row frame when it
# stored it and unpickled it for each reader (~0.1 s of the first render, ~0.04 s of each rerun
# at 100k products). Nothing here changes it: every page step derives new frames.
@st.cache_resource(ttl=300, show_spinner="Scoring every product: contracts, owners, checks, SLOs, consent, bias…",
                   max_entries=8)
def _posture(db: str, version: tuple) -> tuple[pd.DataFrame, pd.DataFrame]:
    del version  # part of the cache key only
    with conn(db) as con:
        scored, history = posture.overview(con, days=35)
    # Worst first, sorted once here. The table links are built for the rows shown only (product_table):
    # for every product they cost ~0.4 s of CPU at 100k products.
    # The posture comes ordered by product id: a stable sort on the score alone then orders ties by
    # id too, without sorting 100k id strings (~0.15 s at 100k products).
    by = "score" if scored["product_id"].is_monotonic_increasing else ["score", "product_id"]
    return scored.sort_values(by, kind="stable").reset_index(drop=True), history


# --- the KPIs: a number, and the products behind it ---------------------------------------------


def _now() -> pd.Timestamp:
    return pd.Timestamp(dt.datetime.now(dt.UTC).replace(tzinfo=None))


def _since(when) -> str:
    """How long ago, short enough for a KPI tile: '21 min', '5 h', '9.1 d', 'never'."""
    if when is None or pd.isna(when):
        return "never"
    seconds = max((_now() - pd.Timestamp(when)).total_seconds(), 0)
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} d"
    if seconds >= 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 60:.0f} min"


def drilldowns(scored: pd.DataFrame) -> dict[str, tuple[str, pd.Series]]:
    """KPI key -> (what the list shows, mask of the products behind the number)."""
    stale = scored["checked_at"].isna() | (scored["checked_at"] < _now() - pd.Timedelta(hours=STALE_CHECK_HOURS))
    slo_missing = scored["slos_missed"].fillna(0).gt(0) | scored["slo_breaching"].fillna(False).astype(bool)
    return {
        "active": ("Active products (lifecycle `active` in their contract)",
                   scored["lifecycle"].fillna("").str.lower().eq("active")),
        "incomplete": ("Products missing a valid contract, an active owner, full classification or full lineage",
                       ~scored["complete"]),
        **{f"status_{s}": (f"Products with {s} checks in their latest run",
                           scored[{"failed": "failed", "error": "errors", "warning": "warnings"}[s]] > 0)
           for s in NOT_PASSING},
        "slo": ("Products missing an SLO target over 30 days, or breaching one now", slo_missing),
        "needing": ("Products that need action (a component below 100, a violation or never checked)",
                    scored["problems"] != ""),
        "stale": (f"Products not checked in the last {STALE_CHECK_HOURS} h (or never)", stale),
    }


def _kpi_button(column, label: str, key: str, count: int, noun: str = "") -> None:
    text = f"{count:,} {noun or ('product' if count == 1 else 'products')} →"
    if column.button(text, key=f"kpi_{key}", help=f"List the products behind “{label}” below", width="content",
                     type="tertiary", disabled=count == 0):
        st.query_params.clear()
        st.query_params["show"] = key
        st.rerun()


def kpis(scored: pd.DataFrame, masks: dict[str, tuple[str, pd.Series]]) -> None:
    total = len(scored)
    complete = int(scored["complete"].sum())
    with_slos = scored[scored["slos"].fillna(0) > 0]
    slo_ok = int(len(with_slos) - masks["slo"][1][with_slos.index].sum())
    cols = st.columns(7)
    cols[0].metric("Active products", f"{int(masks['active'][1].sum()):,}", help=f"{total:,} products in the catalog")
    _kpi_button(cols[0], "Active products", "active", int(masks["active"][1].sum()))
    cols[1].metric("Complete", f"{complete / total:.0%}" if total else "–",
                   help="Share of products with a valid contract, an active owner, every column classified "
                        "and every dataset in lineage")
    _kpi_button(cols[1], "incomplete products", "incomplete", total - complete, "incomplete")
    for column, status in zip(cols[2:5], NOT_PASSING, strict=True):
        count = int(scored[{"failed": "failed", "error": "errors", "warning": "warnings"}[status]].sum())
        column.metric(VIOLATION_LABELS[status], f"{count:,}",
                      help=f"Open violations: checks whose latest result is {status}" +
                           (" (could not run: fix the setup)" if status == "error" else ""))
        _kpi_button(column, f"{status} checks", f"status_{status}", int(masks[f"status_{status}"][1].sum()))
    cols[5].metric("SLO compliance", f"{slo_ok / len(with_slos):.0%}" if len(with_slos) else "–",
                   help="Share of products with SLOs that met every SLO target over the last 30 days")
    _kpi_button(cols[5], "SLO misses", "slo", int(masks["slo"][1].sum()), "missing")
    cols[6].metric("Since last check", _since(scored["checked_at"].max()),
                   help="Time since the newest complete check run of any product")
    _kpi_button(cols[6], "not checked recently", "stale", int(masks["stale"][1].sum()),
                f"not in {STALE_CHECK_HOURS} h")


# --- tables and charts ------------------------------------------------------------------------------


def _score_columns() -> dict:
    config = {
        "link": st.column_config.LinkColumn("Product", display_text=r"product=(.*)$",
                                            help="Open the product in the catalog"),
        "name": "Name", "domain": "Domain",
        "score": st.column_config.ProgressColumn("Score", min_value=0, max_value=100, format="%.0f",
                                                 help="Mean of the components that apply to the product"),
        "problems": st.column_config.TextColumn("What needs action", width="large"),
        "checks_link": st.column_config.LinkColumn("Results", display_text="open results"),
    }
    for part, (label, meaning) in posture.SCORE_PARTS.items():
        config[f"score_{part}"] = st.column_config.NumberColumn(label, format="%.0f", help=meaning)
    return config


def product_table(frame: pd.DataFrame, *, key: str) -> None:
    parts = [f"score_{p}" for p in posture.SCORE_PARTS]
    frame = frame.assign(link=["/catalog?product=" + url_param(p) for p in frame["product_id"]],
                         checks_link=["/checks?product=" + url_param(p) for p in frame["product_id"]])
    st.dataframe(frame[["link", "score", "problems", "name", "domain", *parts, "checks_link"]], key=key,
                 hide_index=True, width="stretch", column_config=_score_columns())


def verdict(scored: pd.DataFrame) -> None:
    acting = scored[scored["open_violations"].gt(0) | scored["slo_breaching"].fillna(False).astype(bool)
                    | scored["consent_violating_users"].fillna(0).gt(0)]
    if scored["checked_at"].isna().all():
        st.info("No checks have run yet, so compliance is unknown. Run them on the **Checks** page, or "
                "headless: `python -m checks run --all`.")
    elif acting.empty:
        unchecked = int(scored["checked_at"].isna().sum())
        st.success(f"No open violations: all {len(scored) - unchecked:,} checked products pass their latest checks "
                   "and keep their SLOs." + (f" {unchecked:,} product{'s were' if unchecked != 1 else ' was'} never "
                                            "checked: `python -m checks run --all`." if unchecked else ""))
    else:
        worst = acting.head(VERDICT_LINES)  # already worst first
        lines = [f"- **{md(name)}**: {md(problem)}" for name, problem in zip(worst["name"], worst["problems"],
                                                                             strict=True)]
        more = len(acting) - len(worst)
        st.error(f"**Not compliant: {len(acting):,} of {len(scored):,} products need action.**\n\n"
                 + "\n".join(lines) + (f"\n\n… and {more:,} more (below)." if more > 0 else ""))


def where_not(scored: pd.DataFrame) -> None:
    st.subheader("Where not: products that need action")
    needing = scored[scored["problems"] != ""]  # already worst first
    if needing.empty:
        st.caption("Nothing to act on: every component of every product is at 100.")
        return
    product_table(needing.head(WHERE_NOT_ROWS), key="where_not")
    if len(needing) > WHERE_NOT_ROWS:
        st.caption(f"The {WHERE_NOT_ROWS:,} lowest scores of {len(needing):,} products that need action.")
        _kpi_button(st, "products that need action", "needing", len(needing), "products: list all")


def score_explained() -> None:
    with st.expander("How the score is computed"):
        st.markdown("Each product gets a **score from 0 to 100: the mean of the components below that apply to "
                    "it**. A component that does not apply (no SLOs declared, no consent requirement, no model) "
                    "or was never measured is left out, never counted as 0. A domain's score is the mean of its "
                    "products' scores.")
        st.table(pd.DataFrame([(label, meaning) for label, meaning in posture.SCORE_PARTS.values()],
                              columns=["Component", "100 means"]))


def _band(score: float) -> str:
    if score >= GOOD_SCORE:
        return "passed"
    return "warning" if score >= FAIR_SCORE else "failed"


# Figures built from graph objects, one trace per band or domain (what Plotly Express drew):
# Express cost ~0.35 s of CPU for these three, graph objects ~0.05 s. Built once per store version
# and shared by every session's reruns (cache_resource: not copied; never changed after building).
@st.cache_resource(ttl=300, max_entries=8, show_spinner=False)
def _figures(db: str, version: tuple) -> dict:
    scored, history = _posture(db, version)
    domains = posture.domain_scores(scored)
    names = {plotly_text(d): d for d in domains["domain"]}  # plotly draws <a href> in labels: escape them
    chart = domains.assign(label=list(names), band=domains["score"].map(_band))
    fig = go.Figure([
        go.Bar(x=rows["score"], y=rows["label"], orientation="h", name=band, marker_color=STATUS_COLOURS[band],
               text=rows["score"].round(0), customdata=rows[["products", "violating"]],
               hovertemplate="%{y}<br>score %{x:.0f}<br>products %{customdata[0]:,}<br>"
                             "with violations %{customdata[1]:,}<extra></extra>")
        for band, rows in chart.groupby("band", sort=False)])
    fig.update_layout(height=110 + 36 * len(chart), margin={"l": 10, "r": 10, "t": 10, "b": 10},
                      showlegend=False, yaxis_title="", xaxis_title="score (0-100)", xaxis_range=[0, 100],
                      yaxis={"categoryorder": "array", "categoryarray": list(chart["label"])[::-1]})
    trends = {}
    if not history.empty:
        frame = history.assign(domain=history["domain"].fillna("(no domain)").map(plotly_text),
                               check_pass_rate=history["check_pass_rate"] * 100,
                               slo_compliance=history["slo_compliance"] * 100)
        for field, title in (("check_pass_rate", "Checks passing (%) per domain"),
                             ("slo_compliance", "Good SLO observations (%) per domain")):
            shown = frame.dropna(subset=[field])
            line = go.Figure([go.Scatter(x=rows["day"], y=rows[field], mode="lines", name=domain,
                                         hovertemplate="%{fullData.name}<br>%{x|%Y-%m-%d}: %{y:.1f} %<extra></extra>")
                              for domain, rows in shown.groupby("domain", sort=False)])
            line.update_layout(title=title, height=300, margin={"l": 10, "r": 10, "t": 40, "b": 10},
                               legend_title_text="", yaxis_title="%", xaxis_title="")
            trends[field] = line
    return {"domains": domains, "domain_names": names, "domain_chart": fig, "trends": trends}


def domain_panel(figures: dict) -> None:
    domains, names = figures["domains"], figures["domain_names"]
    st.subheader("Score by domain")
    event = st.plotly_chart(figures["domain_chart"], width="stretch", on_select="rerun", selection_mode="points",
                            key="domain_chart")
    picked = [names.get(p.get("y")) for p in (event.get("selection", {}).get("points", []) if event else [])]
    if picked and picked[0] and picked[0] != st.query_params.get("domain"):
        st.query_params.clear()
        st.query_params["domain"] = picked[0]
        st.rerun()
    parts = [f"score_{p}" for p in posture.SCORE_PARTS]
    table = domains.assign(link=["?domain=" + url_param(d) for d in domains["domain"]])
    st.dataframe(table[["link", "products", "score", "violating", *parts]], hide_index=True, width="stretch",
                 column_config={**_score_columns(),
                                "link": st.column_config.LinkColumn("Domain", display_text=r"domain=(.*)$",
                                                                    help="List this domain's products"),
                                "violating": st.column_config.NumberColumn("With violations")})


def trend_panel(figures: dict) -> None:
    st.subheader("Trend (last 35 days)")
    if not figures["trends"]:
        st.caption("No history yet: the trend appears after check runs on several days "
                   "(`python -m checks run --all`, e.g. daily in CI).")
        return
    for fig in figures["trends"].values():
        st.plotly_chart(fig, width="stretch")


def drilldown(scored: pd.DataFrame, masks: dict[str, tuple[str, pd.Series]]) -> None:
    show, domain = st.query_params.get("show"), st.query_params.get("domain")
    if not show and not domain:
        return
    if domain is not None:
        title, rows = f"Products of the domain {md(domain)}", scored[scored["domain"].fillna("(no domain)") == domain]
    elif show in masks:
        title, rows = masks[show][0], scored[masks[show][1]]
    else:
        st.warning(f"Unknown list {md(show)}: pick a number above instead.")
        return
    with st.container(border=True):
        head, close = st.columns([5, 1])
        head.markdown(f"**{title}** — {len(rows):,} product{'s' if len(rows) != 1 else ''}")
        if close.button("Close list", key="close_drilldown"):
            st.query_params.clear()
            st.rerun()
        if rows.empty:
            st.caption("No products.")
            return
        product_table(rows, key="drilldown")  # already worst first
        first = rows.head(OPEN_LINKS)
        st.caption("Open in the catalog" + (f" (the {OPEN_LINKS} lowest scores of {len(rows):,}):"
                                            if len(rows) > OPEN_LINKS else ":"))
        for column, row in zip(st.columns(min(len(first), 4)) * ((len(first) + 3) // 4), first.itertuples(),
                               strict=False):
            column.page_link("views/catalog_page.py", label=md(row.name), icon=":material/open_in_new:",
                             query_params={"product": row.product_id})


def main() -> None:
    page_user("overview")  # refuses (and stops) a role that may not see this page
    st.title("Overview")
    st.caption("Are we compliant, and where not? Every data product's contract, owner, classification, lineage, "
               "checks, SLOs, consent and bias, scored 0-100. Click a number to see the products behind it.")
    try:
        version = store_version(db_path())
        scored, _history = _posture(db_path(), version)
        figures = _figures(db_path(), version)
    except StoreError as exc:
        st.error(f"Cannot open the catalog: {md(exc)}")
        return
    if scored.empty:
        st.info("The mesh is empty. Seed the demo with `python -m sample_data seed`, or ingest contracts "
                "with `python -m catalog ingest path/to/contracts/`; then run the checks with "
                "`python -m checks run --all`.")
        return
    verdict(scored)
    masks = drilldowns(scored)
    kpis(scored, masks)
    drilldown(scored, masks)
    where_not(scored)
    score_explained()
    left, right = st.columns([2, 3])
    with left:
        domain_panel(figures)
    with right:
        trend_panel(figures)


main()
