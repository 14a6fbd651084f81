"""Catalog: which data products exist, who owns them, and what do their contracts promise?"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from catalog import access, contract_diff, queries, search
from catalog.store import StoreError
from checks import stored_results
from checks.preview import PreviewUnavailable, dataset_preview
from ui.auth import page_user
from ui.db import conn, db_path
from ui.status import STATUS_COLOURS, badge
from ui.tables import shown
from ui.text import md, md_join, url_param
from views.legal_sections import evidence_download, extract_button

# The search lives in the URL (?q=&domain=&owner=&classification=) as well as in its widgets:
# a product opened from the results keeps it, so "Back to search" finds the same hits.
SEARCH_PARAMS = ("q", "domain", "owner", "classification")
_ANY = {"domain": "All domains", "classification": "Any"}
# Where data and contract files sit on the host: only for roles allowed `view_locations`.
_LOCATION_COLUMNS = ("path", "database", "source_file")


@st.cache_data(ttl=5, show_spinner=False)
def _search(db: str, q: str, domain: str | None, owner: str | None, classification: str | None) -> pd.DataFrame:
    with conn(db) as con:
        return search.search(con, q, limit=200, domain=domain, owner=owner, classification=classification)


@st.cache_data(ttl=5, show_spinner=False)
def _facets(db: str) -> tuple[dict, list[str], list[str]]:
    with conn(db) as con:
        return queries.stats(con), queries.domains(con), queries.classifications(con)


@st.cache_data(ttl=5, show_spinner=False)
def _product_bundle(db: str, product_id: str) -> dict | None:
    with conn(db) as con:
        info = queries.product(con, product_id)
        if info is None:
            return None
        return {
            "info": info,
            "owners": queries.owners(con, product_id),
            "contracts": queries.contracts(con, product_id),
            "datasets": queries.datasets(con, product_id),
            "columns": queries.columns(con, product_id),
            "slos": queries.slos(con, product_id),
            "servers": queries.servers(con, product_id),
            "results": stored_results.latest_results(con, product_id),
        }


@st.cache_data(ttl=5, show_spinner=False)
def _revisions(db: str, contract_id: str) -> pd.DataFrame:
    with conn(db) as con:
        return queries.revisions(con, contract_id)


@st.cache_data(ttl=60, show_spinner=False)
def _raw(db: str, contract_id: str, revision: int) -> str | None:
    with conn(db) as con:
        return queries.raw_contract(con, contract_id, revision)


def _restore_search(choices: dict[str, list[str]]) -> None:
    """Fill the search widgets from the URL when they have no state of their own (arriving, or
    back from a product: Streamlit forgets a widget's value on a run that does not draw it)."""
    for key in SEARCH_PARAMS:
        value = st.query_params.get(key)
        if key in st.session_state or value is None:
            continue
        if key in choices and value not in choices[key]:
            continue  # a domain renamed since the link was made: fall back to "all"
        st.session_state[key] = value


def _keep_search_in_url() -> None:
    for key in SEARCH_PARAMS:
        value = st.session_state.get(key)
        if value and value != _ANY.get(key):
            st.query_params[key] = value
        elif key in st.query_params:
            del st.query_params[key]


def _search_link(product_id: str) -> str:
    kept = "".join(f"&{key}={url_param(st.query_params[key])}" for key in SEARCH_PARAMS if key in st.query_params)
    return f"?product={url_param(product_id)}{kept}"


def search_panel(stats: dict, domain_names: list[str], classification_names: list[str]) -> None:
    _restore_search({"domain": ["All domains", *domain_names], "classification": ["Any", *classification_names]})
    c1, c2, c3, c4 = st.columns([3, 1.2, 1.2, 1.2])
    q = c1.text_input("Search products, owners, tags, columns", key="q",
                      placeholder="e.g. customer email, segments, orders")
    domain = c2.selectbox("Domain", ["All domains", *domain_names], key="domain")
    owner = c3.text_input("Owner", key="owner", placeholder="name or email")
    classification = c4.selectbox("Classification", ["Any", *classification_names], key="classification")
    _keep_search_in_url()
    hits = _search(db_path(), q, None if domain == "All domains" else domain, owner or None,
                   None if classification == "Any" else classification)
    if hits.empty:
        st.info("No product matches. Try fewer words, a prefix (`cust`), or clear a filter.")
        return
    st.caption(f"{len(hits)} of {stats['products']} products" + (" — best match first" if q else ""))
    table = hits.assign(link=[_search_link(p) for p in hits["product_id"]])
    st.dataframe(
        shown(table[["link", "name", "domain", "status", "description", "score"]]),
        hide_index=True, width="stretch",
        column_config={
            "link": st.column_config.LinkColumn("Product", display_text=r"\?product=([^&]*)"),
            "score": st.column_config.ProgressColumn("Relevance", min_value=0.0,
                                                     max_value=float(hits["score"].max() or 1.0), format="%.2f"),
            "description": st.column_config.TextColumn("Description", width="large"),
        },
    )
    choice = st.selectbox("Open a product", ["—", *hits["product_id"]], key="open_product",
                          format_func=lambda pid: pid if pid == "—" else
                          f"{hits.set_index('product_id').at[pid, 'name']} ({pid})")
    if choice != "—":
        st.query_params["product"] = choice
        st.rerun()


def product_detail(product_id: str, user) -> None:
    bundle = _product_bundle(db_path(), product_id)
    if st.button("Back to search", key="back", icon=":material/arrow_back:"):
        del st.query_params["product"]  # the search (q, domain, owner, classification) stays
        st.rerun()
    if bundle is None:
        st.warning(f"No product {md(product_id)} in the catalog. It may have been renamed; search for it instead.")
        return
    info, cols = bundle["info"], bundle["columns"]
    results = bundle["results"]
    st.header(md(info["name"]))
    checks_status = results["status"].iloc[0] if not results.empty else None
    st.markdown(f"**Domain** {md(info['domain'])} · **Lifecycle** {md(info['status'] or 'unknown')} · "
                f"**Latest checks** {badge(checks_status)} · **Deep link** {md('?product=' + product_id)}")
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Datasets", len(bundle["datasets"]))
    m2.metric("Columns", len(cols))
    m3.metric("PII columns", int(cols["pii"].sum()) if not cols.empty else 0)
    m4.metric("Contracts", len(bundle["contracts"]))
    if info.get("description"):
        st.markdown(md(info["description"]))
    for label in ("usage", "limitations"):
        if info.get(label):
            st.markdown(f"**{label.capitalize()}:** {md(info[label])}")

    tabs = st.tabs(["Schema", "Owners", "Latest checks", "Contract versions", "SLOs", "Servers", "Data preview"])
    with tabs[0]:
        schema_tab(cols)
    with tabs[1]:
        owners = bundle["owners"]
        if owners.empty:
            st.warning("No owner is named in this product's contract: add a `team` with members.")
        else:
            st.dataframe(shown(owners), hide_index=True, width="stretch")
    with tabs[2]:
        results_tab(product_id, results)
    with tabs[3]:
        versions_tab(bundle["contracts"], user)
    with tabs[4]:
        if bundle["slos"].empty:
            st.info("No SLOs declared: add `slaProperties` (latency, frequency, retention) to the contract.")
        else:
            st.dataframe(shown(bundle["slos"]), hide_index=True, width="stretch")
    with tabs[5]:
        servers_tab(bundle["servers"], user)
    with tabs[6]:
        preview_tab(product_id, bundle["datasets"], user)
    with st.expander("Legal: evidence pack and sandbox extract"):
        evidence_download(user, product_id=product_id)
        extract_button(user, product_id)


def _for_role(frame: pd.DataFrame, user) -> pd.DataFrame:
    """`frame` without its file-location columns unless `user` may see where data lives."""
    if access.can(user, "view_locations"):
        return frame
    return frame.drop(columns=[c for c in _LOCATION_COLUMNS if c in frame.columns])


def _locations_note(user) -> None:
    if not access.can(user, "view_locations"):
        st.caption(":material/lock: Server paths, database and contract files are shown to the roles "
                   f"{', '.join(access.roles_allowing('view_locations'))}.")


def servers_tab(servers: pd.DataFrame, user) -> None:
    if servers.empty:
        st.info("No servers declared: checks cannot read this product's data.")
        return
    st.dataframe(shown(_for_role(servers, user)), hide_index=True, width="stretch")
    _locations_note(user)


def preview_tab(product_id: str, datasets: pd.DataFrame, user) -> None:
    if datasets.empty:
        st.info("The contract declares no datasets.")
        return
    dataset = st.selectbox("Dataset", datasets["dataset"], key="preview_dataset")
    reveal = access.can(user, "view_pii") and st.toggle("Reveal PII (each view is audited)",
                                                         key=f"reveal_{product_id}_{dataset}")
    try:
        rows, pii = dataset_preview(db_path(), product_id=product_id, dataset=dataset, user=user, reveal=reveal)
    except PreviewUnavailable as exc:
        st.info(f"No preview: {md(exc)}.")
        return
    except Exception as exc:  # noqa: BLE001 - a broken file must not show a stack trace
        # The reader's message names the file's absolute path: only for those who may see it.
        why = f": {md(exc)}" if access.can(user, "view_locations") else f" ({type(exc).__name__})"
        st.warning(f"Could not read {md(dataset)}{why}")
        return
    if pii:
        st.caption((":material/lock_open: PII shown unmasked — this view is in the audit trail: " if reveal
                    else ":material/lock: PII masked: ")
                   + md_join(pii))
    st.dataframe(shown(rows), hide_index=True, width="stretch")


def results_tab(product_id: str, results: pd.DataFrame) -> None:
    if results.empty:
        st.info("No checks have run on this product yet. Run them on the Checks page "
                f"({md('/checks?product=' + product_id)}) or "
                f"{md('python -m checks run --product ' + product_id)}.")
        return
    counts = results["status"].value_counts()
    st.markdown(" · ".join(f"{badge(s)} {counts[s]}" for s in STATUS_COLOURS if s in counts))
    view = shown(results[["status", "check_id", "measured", "threshold", "kind", "reason"]])
    st.dataframe(view.style.map(lambda v: f"color: {STATUS_COLOURS.get(v, '')}", subset=["status"]),
                 hide_index=True, width="stretch",
                 column_config={"status": st.column_config.TextColumn("status", width=80),
                                "check_id": st.column_config.TextColumn("check", width=280),
                                "reason": st.column_config.TextColumn("reason", width="large")})
    st.page_link("views/checks_page.py", label="Open in Checks for history and failing rows",
                 query_params={"product": product_id})


def schema_tab(cols: pd.DataFrame) -> None:
    if cols.empty:
        st.info("The contract declares no schema.")
        return
    unclassified = cols["classification"].isna().sum()
    if unclassified:
        st.warning(f"{unclassified} column(s) have no classification.")
    view = cols.assign(pii=cols["pii"].map({True: "PII", False: ""}),
                       tags=cols["tags"].map(lambda t: ", ".join(t) if t is not None else ""))
    st.dataframe(shown(view), hide_index=True, width="stretch",
                 column_order=["dataset", "column_name", "classification", "pii", "logical_type", "required",
                               "primary_key", "is_unique", "physical_type", "tags", "description"],
                 column_config={"column_name": "Column", "is_unique": "unique", "primary_key": "PK",
                                "description": st.column_config.TextColumn("description", width="large")})


def versions_tab(contracts: pd.DataFrame, user) -> None:
    if contracts.empty:
        st.info("No contract ingested for this product.")
        return
    contract_id = st.selectbox("Contract", contracts["contract_id"], key="contract")
    revs = _revisions(db_path(), contract_id)
    st.dataframe(shown(_for_role(revs.drop(columns=["content_hash"]), user)), hide_index=True, width="stretch")
    if len(revs) < 2:
        st.caption("Only one revision so far: a diff appears once the contract changes.")
        # Collapsed: a whole contract inline made a 6,000 px page.
        with st.expander("Contract YAML", icon=":material/description:"):
            st.code(_raw(db_path(), contract_id, int(revs["revision"].iloc[0])) or "", language="yaml")
        return
    labels = {int(r.revision): f"rev {r.revision} · v{r.version}" for r in revs.itertuples()}
    ordered = list(labels)
    c1, c2 = st.columns(2)
    old = c1.selectbox("From", ordered, index=1, format_func=labels.get, key="rev_old")
    new = c2.selectbox("To", ordered, index=0, format_func=labels.get, key="rev_new")
    if old == new:
        st.info("Pick two different revisions to compare.")
        return
    result = contract_diff.diff(_raw(db_path(), contract_id, old), _raw(db_path(), contract_id, new),
                                old_label=labels[old], new_label=labels[new])
    breaking = result.breaking
    if not breaking.empty:
        st.error(f"{len(breaking)} breaking change(s) for consumers between {md(labels[old])} and {md(labels[new])}.")
    elif result.changes.empty:
        st.success("No schema changes between these revisions.")
    else:
        st.success("Changes are compatible: nothing a consumer relies on was removed or tightened.")
    if not result.changes.empty:
        st.dataframe(shown(result.changes.assign(breaking=result.changes["breaking"].map({True: "breaking",
                                                                                           False: ""}))),
                     hide_index=True, width="stretch")
    with st.expander("YAML diff"):
        st.code(result.text or "(identical text)", language="diff")


def main() -> None:
    user = page_user("catalog")  # refuses (and stops) a role that may not see this page
    st.title("Catalog")
    st.caption("Find a data product: its owners, contract, schema with classifications and PII flags, SLOs.")
    try:
        stats, domain_names, classification_names = _facets(db_path())
    except StoreError as exc:
        st.error(f"Cannot open the catalog: {md(exc)}")
        return
    if stats["products"] == 0:
        st.info("The catalog is empty. Seed the demo mesh with `python -m sample_data seed`, or ingest your "
                "contracts with `python -m catalog ingest path/to/contracts/`.")
        return
    product_id = st.query_params.get("product")
    if product_id:
        product_detail(product_id, user)
    else:
        search_panel(stats, domain_names, classification_names)


main()
