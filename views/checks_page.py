"""Checks: run the contract checks, see what fails and why, and how it trends.

Layout only: runs, results, history and policies come from checks.runner; the store is
opened per use (ui.db.conn), so a CI gate can write to the same file while this page is up.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from catalog import access
from catalog.store import StoreError
from checks import latest, runner, stored_results
from ui.auth import page_user
from ui.db import conn, db_path
from ui.status import NO_STATUS_ICON, STATUS_COLOURS, STATUS_ICONS, icon_label, label
from ui.tables import shown as shown_frame
from ui.text import md, md_join, plotly_text

LAST_RUN_KEY = "checks_last_run"
# Set by the Run button's callback, before the rerun that draws the button again: that rerun
# draws it disabled and does the run, so a second click cannot queue a second full run.
RUNNING_KEY = "checks_running"
_STATUS_ORDER = ["error", "failed", "warning", "passed", "skipped"]
# What matters first: at 1440 px the Reason column takes the rest of the width.
_TABLE_COLUMNS = ["status", "check_id", "measured", "threshold", "finished_at", "kind", "reason"]
# Rows of the results table per page: a styled table of 20k rows took ~5 s to build per rerun.
PAGE_ROWS = 200


# --- loaders: one cheap change token per rerun; the rest cached under it --------------------------
# At 10k products the latest results are ~370k rows: they are counted, filtered and paged in
# SQL (checks.latest), and nothing is read again until a run finishes or the catalog changes.

@st.cache_data(ttl=2, show_spinner=False)
def _token(db: str) -> tuple:
    with conn(db) as con:
        return latest.change_token(con)


@st.cache_data(ttl=600, show_spinner=False, max_entries=4)
def _products(db: str, token: tuple) -> list[str]:
    del token  # part of the cache key only
    with conn(db) as con:
        return runner.known_products(con)


@st.cache_data(ttl=600, show_spinner=False, max_entries=16)
def _summary(db: str, token: tuple, selection: tuple[str, ...]) -> dict:
    del token
    with conn(db) as con:
        return latest.summary(con, selection)


@st.cache_data(ttl=600, show_spinner=False, max_entries=32)
def _page(db: str, token: tuple, selection: tuple[str, ...], statuses: tuple[str, ...],
          kinds: tuple[str, ...], number: int) -> pd.DataFrame:
    del token
    with conn(db) as con:
        return latest.page(con, product_ids=selection, statuses=statuses, kinds=kinds,
                           limit=PAGE_ROWS, offset=(number - 1) * PAGE_ROWS)


@st.cache_data(ttl=600, show_spinner=False, max_entries=32)
def _history(db: str, token: tuple, product_id: str) -> pd.DataFrame:
    del token
    with conn(db) as con:
        return stored_results.run_history(con, product_id)


@st.cache_data(ttl=600, show_spinner=False, max_entries=64)
def _detail(db: str, run_id: str, check_id: str) -> dict | None:
    with conn(db) as con:
        return stored_results.result_detail(con, run_id, check_id)


# The pack is files: re-read at least every minute even when the store did not change.
@st.cache_data(ttl=60, show_spinner=False, max_entries=4)
def _policies(db: str, token: tuple) -> pd.DataFrame:
    del token
    with conn(db) as con:
        return latest.policy_outcomes(con)


PRODUCT_OPTIONS = 50  # products a picker offers at once in a large catalog


@st.cache_data(ttl=600, show_spinner=False, max_entries=16)
def _matching(db: str, token: tuple, query: str) -> list[str]:
    """The first PRODUCT_OPTIONS product ids containing `query` (any case): a multiselect and a
    selectbox listing 100k products cost ~0.45 s of every rerun at 100k."""
    needle = query.strip().lower()
    products = _products(db, token)
    return (products if not needle else [p for p in products if needle in p.lower()])[:PRODUCT_OPTIONS]


@st.cache_resource(ttl=600, show_spinner=False, max_entries=4)
def _known(db: str, token: tuple) -> frozenset[str]:
    return frozenset(_products(db, token))


def _clear_caches() -> None:
    for loader in (_token, _products, _matching, _known, _summary, _page, _history, _history_figure, _detail, _policies):
        loader.clear()


# --- run panel -----------------------------------------------------------------------------------

def _request_run(selection: list[str]) -> None:
    st.session_state[RUNNING_KEY] = {"selection": list(selection)}


@st.fragment
def run_panel(db: str, selection: list[str], user: access.User) -> None:
    """The Run button with live progress; reruns alone while checks run. Only for roles that
    may run checks (the runner refuses the others too). The button is disabled while a run
    of this session is in progress."""
    scope = md_join(selection) if selection else "all products"
    if not access.can(user, "run_checks"):
        st.caption(f":material/lock: Your role ({', '.join(user.roles) or 'none'}) may read check results but "
                   f"not start a run; roles that can: {', '.join(access.roles_allowing('run_checks'))}.")
        return
    requested = st.session_state.get(RUNNING_KEY)
    if requested is not None and requested.get("started"):
        # Left by a run that never reached its finally (its session died): not a run in progress.
        st.session_state.pop(RUNNING_KEY, None)
        requested = None
    left, middle, right = st.columns([1, 3, 1], vertical_alignment="bottom")
    timeout = right.number_input("Time limit per query (s)", min_value=1.0, max_value=600.0, value=30.0,
                                 step=5.0, key="timeout")
    middle.caption(f"Scope: {scope}")
    left.button("Running…" if requested is not None else "Run checks", key="run", type="primary",
                width="stretch", disabled=requested is not None, on_click=_request_run, args=(selection,))
    if requested is None:
        return
    requested["started"] = True
    try:
        _run(db, requested["selection"], scope, user, float(timeout))
    finally:
        st.session_state.pop(RUNNING_KEY, None)
    st.rerun()


def _run(db: str, selection: list[str], scope: str, user: access.User, timeout: float) -> None:
    bar = st.progress(0.0, text="reading contracts…")
    lines = st.empty()
    seen: list[str] = []
    steps = {"done": 0, "total": 0}

    def progress(event: dict) -> None:
        steps.update(done=event["done"], total=event["total"])
        # Steps and results are different counts (one PII scan step gives a result per column).
        bar.progress(min(event["done"] / max(event["total"], 1), 1.0),
                     text=f"step {event['done']} of {event['total']} · {event['results']} results so far · "
                          f"{md(event['check_id'])}")
        if event["status"] != "passed":
            seen.append(f"{STATUS_ICONS.get(event['status'], '')} {md(event['check_id'])} {event['status']}")
            lines.markdown("\n".join(f"- {line}" for line in seen[-12:]))

    try:
        run = runner.run_checks(db, product_ids=selection or None, user=user, progress=progress,
                                timeout_s=timeout)
    except access.PermissionDenied as exc:
        problem = f":material/lock: {md(exc)}"
    except runner.UnknownProducts as exc:
        problem = f"Cannot run: {md(exc)}"
    except StoreError as exc:
        problem = f"Cannot reach the catalog: {md(exc)}"
    except Exception as exc:  # noqa: BLE001 - never a stack trace on the page
        problem = f"The check run stopped: {type(exc).__name__}: {md(exc)}. It is recorded as incomplete."
    else:
        st.session_state[LAST_RUN_KEY] = {"run_id": run.run_id, "status": run.status, "counts": run.counts(),
                                          "results": len(run.results), "steps": steps["done"], "scope": scope}
        _clear_caches()
        return
    st.session_state[LAST_RUN_KEY] = {"problem": problem}


def last_run_banner() -> None:
    last = st.session_state.get(LAST_RUN_KEY)
    if not last:
        return
    if "problem" in last:
        st.error(last["problem"])
        return
    counts = ", ".join(f"{n} {s}" for s, n in last["counts"].items() if n)
    text = (f"Run {md(last['run_id'])} ({last['scope']}) finished: {icon_label(last['status'])} — "
            f"{last['results']} results from {last['steps']} steps: {counts}.")
    {"passed": st.success, "skipped": st.info, "warning": st.warning}.get(last["status"], st.error)(text)


# --- results --------------------------------------------------------------------------------------

def _status_style(value: Any) -> str:
    colour = STATUS_COLOURS.get(str(value))
    return f"background-color: {colour}; color: white; font-weight: 600" if colour else ""


def results_table(db: str, token: tuple, selection: tuple[str, ...]) -> pd.DataFrame | None:
    """Counts by status, the filters, and one page of the filtered results (worst first);
    returns that page (for the drill-down), or None when nothing matches."""
    summary = _summary(db, token, selection)
    cols = st.columns(len(_STATUS_ORDER))
    for col, status in zip(cols, _STATUS_ORDER, strict=True):
        col.metric(icon_label(status), int(summary["counts"].get(status, 0)))
    left, right = st.columns([2, 3])
    chosen_status = left.multiselect("Status", _STATUS_ORDER, default=["error", "failed", "warning"],
                                     key="status_filter", placeholder="all statuses")
    chosen_kinds = right.multiselect("Kind", summary["kinds"], key="kind_filter", placeholder="all kinds")
    statuses, kinds = tuple(chosen_status), tuple(chosen_kinds)
    total = latest.matching(summary, statuses=statuses, kinds=kinds)
    if total == 0:
        st.success("Nothing matches these filters: every shown check passed.")
        return None
    pages = -(-total // PAGE_ROWS)
    number = 1
    if pages > 1:
        number = int(st.number_input(f"Page (of {pages:,}, {PAGE_ROWS} rows each)", min_value=1,
                                     max_value=pages, value=1, step=1, key="results_page"))
    number = min(number, pages)  # the page number may outlive a narrower filter
    shown = _page(db, token, selection, statuses, kinds, number)
    first = (number - 1) * PAGE_ROWS + 1
    st.caption(f"Rows {first:,}–{first + len(shown) - 1:,} of {total:,}, worst first.")
    table = shown_frame(shown[_TABLE_COLUMNS].reset_index(drop=True))
    st.dataframe(
        table.style.map(_status_style, subset=["status"]), hide_index=True, width="stretch",
        column_config={
            "status": st.column_config.TextColumn("Status", width=80),
            "check_id": st.column_config.TextColumn("Check", width=300),
            "measured": st.column_config.TextColumn("Measured", width=90),
            "threshold": st.column_config.TextColumn("Threshold", width=90),
            "finished_at": st.column_config.TextColumn("Checked (UTC)", width=130),
            "kind": st.column_config.TextColumn("Kind", width=90),
            "reason": st.column_config.TextColumn("Reason", width="large"),
        })
    return shown


def render_detail(detail: dict) -> None:
    """Everything about one result: reason, failing-row sample, the SQL that ran, diagnostics."""
    diagnostics = dict(detail.get("diagnostics") or {})
    status = detail.get("status")
    st.markdown(f"**{icon_label(status)}** · {md(detail['check_id'])} · {md(detail.get('kind'))} · "
                f"{md(detail.get('target'))}")
    st.markdown(md(detail.get("reason")))
    facts = {"measured": detail.get("measured"), "threshold": detail.get("threshold"),
             "contract": f"{detail.get('contract_id') or '-'} {detail.get('contract_version') or ''}".strip(),
             "run": detail.get("run_id"), "triggered by": detail.get("triggered_by")}
    st.caption(" · ".join(f"{k}: {md(v)}" for k, v in facts.items() if v not in (None, "", "-")))
    sample = diagnostics.pop("sample", None)
    if sample:
        st.markdown("**Failing rows** (at most 10; personal data masked)")
        st.dataframe(shown_frame(pd.DataFrame(sample)), hide_index=True, width="stretch")
    changes = diagnostics.pop("changes", None)
    if changes:
        st.markdown("**Breaking changes**")
        st.dataframe(shown_frame(pd.DataFrame(changes)), hide_index=True, width="stretch")
    violations = diagnostics.pop("violations", None)
    if violations:
        st.markdown("**Violations**")
        st.dataframe(shown_frame(pd.DataFrame(violations)), hide_index=True, width="stretch")
    if detail.get("sql"):
        st.markdown("**SQL that ran**")
        st.code(detail["sql"], language="sql")
    sample_sql = diagnostics.pop("sample_sql", None)
    if sample_sql:
        st.markdown("**SQL of the failing-row sample**")
        st.code(sample_sql, language="sql")
    if diagnostics:
        with st.expander("Diagnostics", expanded=False):
            st.json(diagnostics)


def drill_down(db: str, results: pd.DataFrame) -> None:
    """Pick one result of the table's page (already worst first) and show everything about it."""
    options = list(results["check_id"])
    run_of = dict(zip(results["check_id"], results["run_id"], strict=True))
    status_of = dict(zip(results["check_id"], results["status"], strict=True))
    chosen = st.selectbox("Inspect a result", options, key="inspect",
                          format_func=lambda cid: f"{label(status_of[cid])} · {cid}")
    if not chosen:
        return
    detail = _detail(db, run_of[chosen], chosen)
    if detail is None:
        st.warning("That result is no longer stored.")
        return
    with st.container(border=True):
        render_detail(detail)


def results_section(db: str, token: tuple, selection: tuple[str, ...]) -> None:
    try:
        if not _summary(db, token, selection)["total"]:
            st.info("No check runs yet. Choose products (or none for all) and press **Run checks**, "
                    "or run the CI gate: `python -m checks run --all`.")
            return
        shown = results_table(db, token, selection)
    except StoreError as exc:
        st.error(f"Cannot read check results: {md(exc)}")
        return
    if shown is not None:
        drill_down(db, shown)


# --- history ----------------------------------------------------------------------------------------

# Building the trend figure took ~0.25 s of every rerun: it is built once per product and token,
# from graph objects (one line per status, as Plotly Express drew it, at a tenth of its cost).
@st.cache_resource(ttl=600, show_spinner=False, max_entries=16)
def _history_figure(db: str, token: tuple, product: str):
    history = _history(db, token, product)
    figure = go.Figure([
        go.Scatter(x=history["started_at"], y=history[status], mode="lines+markers", name=status,
                   line_color=STATUS_COLOURS[status], customdata=history["run_id"],
                   hovertemplate=f"{status}<br>run started (UTC) %{{x}}<br>results %{{y}}<br>"
                                 "run %{customdata}<extra></extra>")
        for status in ("passed", "warning", "failed", "error")])
    figure.update_layout(title=f"Check results per run — {plotly_text(product)}", height=320,
                         margin={"l": 10, "r": 10, "t": 40, "b": 10}, legend_title_text="",
                         xaxis_title="run started (UTC)", yaxis_title="results")
    return figure


def history_panel(db: str, token: tuple, products: list[str], preferred: list[str]) -> None:
    """`products`: what the picker offers (all of them, or the selection and the matches of the
    product search in a large catalog)."""
    kept = st.session_state.get("history_product")
    options = list(dict.fromkeys([*preferred, *products, *([kept] if kept in _known(db, token) else [])]))
    default = preferred[0] if preferred else options[0]
    product = st.selectbox("Product", options, index=options.index(default), key="history_product")
    history = _history(db, token, product)
    if history.empty:
        st.info(f"{md(product)} has not been checked yet.")
        return
    st.plotly_chart(_history_figure(db, token, product), width="stretch", key="history_chart")
    runs = history[["run_id", "started_at", "state", "status", "triggered_by", "passed", "warning", "failed",
                    "error", "skipped"]].iloc[::-1]
    st.dataframe(shown_frame(runs).style.map(_status_style, subset=["status"]), hide_index=True, width="stretch")


# --- policies --------------------------------------------------------------------------------------

def policies_panel(db: str, token: tuple) -> None:
    try:
        pack = _policies(db, token)
    except Exception as exc:  # noqa: BLE001 - a broken pack must not take the page down
        st.error(f"Cannot load the policy pack: {md(exc)}")
        return
    if pack.empty:
        st.info("The policy pack is empty: add a policy file (one SELECT of violations) to checks/policies/ "
                "or a folder named in MESHGOV_POLICY_DIR.")
        return
    for row in pack.itertuples():
        status = row.status if isinstance(row.status, str) else None
        outcome = label(status) if status else "not run yet"
        if status and row.checked == row.checked:  # not NaN
            outcome += f" · {int(row.failing)} of {int(row.checked)} products in breach"
        with st.expander(f"{md(row.title)} — {outcome}", icon=STATUS_ICONS.get(status or "", NO_STATUS_ICON)):
            st.caption(f"{md(row.policy_id)} · severity {md(row.severity)} · applies to {md(row.applies_to)} · "
                       f"{md(row.source)}")
            if row.description:
                st.markdown(md(row.description))
            if isinstance(row.problem, str) and row.problem:
                st.error(f"This policy file cannot be used: {md(row.problem)}")
            st.code(row.sql or "", language="sql")


# --- page ---------------------------------------------------------------------------------------------

def main() -> None:
    user = page_user("checks")
    st.title("Checks")
    st.caption("Contract quality, schema, freshness, compatibility, PII and catalog policies — "
               "the same engine as the CI gate `python -m checks run`.")
    db = db_path()
    try:
        token = _token(db)
        products = _products(db, token)
    except StoreError as exc:
        st.error(f"Cannot open the catalog: {md(exc)}")
        return
    if not products:
        st.info("The catalog has no products yet. Seed the demo mesh with `python -m sample_data seed`, "
                "or ingest contracts with `python -m catalog ingest PATH`.")
        return
    known = _known(db, token)
    linked = st.query_params.get_all("product")
    wanted = [p for p in linked if p in known]
    unknown = [p for p in linked if p not in known]
    if unknown:
        st.warning(f"Unknown product in the link: {md_join(unknown)}")
    if len(products) > PRODUCT_OPTIONS:
        # Search as you type: the pickers offer the chosen products and the first matches.
        query = st.text_input("Find products", key="products_find", placeholder="part of a product id",
                              help=f"The Products and History lists offer the first {PRODUCT_OPTIONS} products "
                                   "whose id contains this text.")
        chosen = [p for p in st.session_state.get("products", []) if p in known]
        products = list(dict.fromkeys([*chosen, *wanted, *_matching(db, token, query)]))
    selection = st.multiselect("Products", products, default=wanted, key="products",
                               placeholder="All products")
    run_panel(db, selection, user)
    last_run_banner()
    results_tab, history_tab, policies_tab = st.tabs(["Results", "History", "Policies"])
    with results_tab:
        results_section(db, token, tuple(selection))
    with history_tab:
        history_panel(db, token, products, selection)
    with policies_tab:
        policies_panel(db, token)


main()
