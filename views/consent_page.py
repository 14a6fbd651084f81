"""Consent: did the users in personalised outputs opt in to the purpose, at the time of use?

Layout only: coverage and violations come from checks.consent (the latest consent results
and the consent records the contracts name); the drill-down masks user keys and PII by role
in checks.consent_reports.violation_rows (a reveal is audited). Data strings are shown in tables or
as plain text, never as markdown.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import streamlit as st

from catalog import access
from catalog.store import StoreError
from checks import consent_reports
from ui.auth import page_user
from ui.db import conn, db_path, store_version
from ui.tables import shown
from ui.text import md
from views.legal_sections import trace_form

_REVEAL_KEY = "consent_reveal"


@st.cache_data(ttl=10, show_spinner=False)
def _coverage(db: str) -> pd.DataFrame:
    with conn(db) as con:
        return consent_reports.coverage_by_product(con)


@st.cache_data(ttl=10, show_spinner=False)
def _history(db: str) -> pd.DataFrame:
    with conn(db) as con:
        return consent_reports.coverage_history(con)


# Masked rows are the same whoever asks (every PII column masked): read once per store change
# and minute, not on every rerun (~0.5 s of reading the output and the consent records at 10k).
# A revealed view is read, and audited, each time.
@st.cache_data(ttl=60, show_spinner=False, max_entries=32)
def _masked_violations(db: str, product_id: str, dataset: str, purpose: str, version: tuple,
                       _user: access.User) -> pd.DataFrame:
    del version  # part of the cache key only
    return consent_reports.violation_rows(db, product_id=product_id, dataset=dataset, purpose=purpose,
                                          user=_user, reveal=False)


@st.cache_data(ttl=60, show_spinner=False)
def _source_trend(db: str) -> pd.DataFrame:
    return consent_reports.source_trend(db)


def headline(coverage: pd.DataFrame) -> None:
    failing = coverage[coverage["violating_users"].fillna(0) > 0]
    if failing.empty:
        st.success(f"Every checked personalised output ({len(coverage)} dataset-purpose pairs) holds only users "
                   "with a valid consent at the time of use.")
    else:
        st.error(f"Not compliant: {len(failing)} of {len(coverage)} output/purpose pairs hold users without a "
                 f"valid consent at the time of use ({int(failing['violating_users'].max()):,} users at most).")
    c1, c2, c3 = st.columns(3)
    c1.metric("Outputs checked", coverage[["product_id", "dataset"]].drop_duplicates().shape[0])
    c2.metric("Users without valid consent", int(failing["violating_users"].max()) if len(failing) else 0)
    c3.metric("Of them: withdrew before a later use",
              int(failing["withdrawn_users"].max()) if len(failing) else 0)


def coverage_chart(coverage: pd.DataFrame) -> None:
    frame = coverage.assign(output=coverage["product_id"] + "." + coverage["dataset"],
                            share=coverage["coverage"] * 100)
    fig = px.bar(frame, x="share", y="output", color="purpose", barmode="group", orientation="h",
                 range_x=[min(90.0, float(frame["share"].min() or 0) - 1), 100],
                 title="Users with a valid consent at every use, per output and purpose (%)",
                 hover_data={"users": True, "violating_users": True})
    fig.update_layout(height=160 + 50 * frame["output"].nunique(), margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      yaxis_title="", xaxis_title="% of users")
    st.plotly_chart(fig, width="stretch")


def trends(db: str, history: pd.DataFrame) -> None:
    left, right = st.columns(2)
    with left:
        try:
            trend = _source_trend(db)
        except ValueError as exc:  # the source is refused (outside the data roots), missing or unreadable
            st.warning(f"The consent records cannot be read, so the opt-in trend is not drawn: {md(exc)}")
            trend = None
        if trend is None:
            pass
        elif trend.empty:
            st.info("No contract declares a consent source (customProperty meshgov.consent.source).")
        else:
            fig = px.line(trend.assign(share=trend["share"] * 100), x="day", y="share", color="purpose",
                          title="Customers opted in, per purpose (consent records, 90 days)")
            fig.update_layout(yaxis_title="% opted in", xaxis_title="", margin={"l": 10, "r": 10, "t": 50, "b": 10})
            st.plotly_chart(fig, width="stretch")
    with right:
        if history.empty:
            st.info("No consent check has run yet.")
        else:
            frame = history.assign(output=history["product_id"] + "." + history["dataset"] + " / "
                                   + history["purpose"])
            fig = px.line(frame, x="run_at", y="violating_users", color="output", markers=True,
                          title="Users without valid consent, per check run")
            fig.update_layout(yaxis_title="users", xaxis_title="", margin={"l": 10, "r": 10, "t": 50, "b": 10})
            st.plotly_chart(fig, width="stretch")


def violations(db: str, coverage: pd.DataFrame, user: access.User) -> None:
    st.subheader("Violations")
    failing = coverage[coverage["violating_users"].fillna(0) > 0]
    if failing.empty:
        st.caption("No users without a valid consent in the latest checks.")
        return
    table = failing[["product_id", "dataset", "purpose", "users", "violating_users", "never_users",
                     "withdrawn_users", "violating_uses", "finished_at"]]
    st.dataframe(table, hide_index=True, width="stretch", column_config={
        "product_id": "Product", "dataset": "Output", "purpose": "Purpose", "users": "Users",
        "violating_users": "Without consent", "never_users": "Never consented",
        "withdrawn_users": "Withdrew before a later use", "violating_uses": "Uses (sends, rows)",
        "finished_at": st.column_config.DatetimeColumn("Checked", format="YYYY-MM-DD HH:mm"),
    })
    choices = list(failing[["product_id", "dataset", "purpose"]].itertuples(index=False, name=None))
    picked = st.selectbox("Drill down to the users and uses", choices, key="consent_drill",
                          format_func=lambda c: f"{c[0]}.{c[1]} — {c[2]}")
    may_reveal = access.can(user, "view_pii")
    reveal = st.toggle("Show personal data unmasked (audited)", key=_REVEAL_KEY, disabled=not may_reveal,
                       help=None if may_reveal else "Your role may not view personal data.")
    if picked:
        drill_down(db, picked, user, reveal=bool(reveal and may_reveal))


def drill_down(db: str, picked: tuple[str, str, str], user: access.User, *, reveal: bool) -> None:
    """The uses without consent of one output and purpose (a plain function: testable)."""
    product_id, dataset, purpose = picked
    try:
        rows = (consent_reports.violation_rows(db, product_id=product_id, dataset=dataset, purpose=purpose,
                                               user=user, reveal=True) if reveal
                else _masked_violations(db, product_id, dataset, purpose, store_version(db), user))
    except (ValueError, StoreError) as exc:
        st.warning("Cannot show the users of this output:", icon=":material/warning:")
        st.text(str(exc))  # names from contracts: plain text, never markdown
        return
    st.text(f"{len(rows):,} most recent uses without a valid '{purpose}' consent "
            f"({'unmasked, audited' if reveal else 'personal data masked'})")
    st.dataframe(shown(rows), hide_index=True, width="stretch")


def main() -> None:
    user = page_user("consent")
    st.title("Consent")
    st.caption("Did the users in our personalised outputs opt in to the purpose at the time we used "
               "their data? Outputs and purposes are declared in the contracts.")
    db = db_path()
    try:
        coverage = _coverage(db)
        history = _history(db)
    except StoreError as exc:
        st.error(f"Cannot open the catalog: {md(exc)}")
        return
    if coverage.empty:
        st.info("No consent results yet. Declare `meshgov.consent.requires` on a personalised output's "
                "contract and `meshgov.consent.source` on the consent product's, then run the checks.")
        return
    headline(coverage)
    coverage_chart(coverage)
    trends(db, history)
    violations(db, coverage, user)
    trace_form(user)


main()
