"""Lineage: where does a product's data come from, where does it go, what breaks when it fails?"""

from __future__ import annotations

import concurrent.futures
import contextlib
import types
from collections.abc import Mapping, Sequence

import pandas as pd
import streamlit as st

from catalog import lineage, openlineage
from catalog.store import StoreError
from checks import latest
from ui import lineage_drawing
from ui.auth import page_user
from ui.db import conn, db_path
from ui.status import STATUS_COLOURS, badge
from ui.tables import shown as shown_frame
from ui.text import md, url_param

LEVELS = {"products": "Products", "datasets": "Datasets & jobs"}
DIRECTIONS = {"both": "Both", "upstream": "Upstream", "downstream": "Downstream"}
DEPTHS = [1, 2, 3, 4, 5, 6, 8, 10, "all"]
KIND_LABELS = {"product": "Product", "dataset": "Dataset", "external": "External", "model": "Model",
               "job": "Job", "column": "Column"}


@st.cache_data(ttl=2, show_spinner=False)
def _token(db: str) -> tuple:
    with conn(db) as con:
        return latest.change_token(con)


# The node colours read every latest result (~1M stored at 10k products): once per change of
# the runs or the catalog, not on every rerun. One shared read-only copy (cache_resource):
# cache_data pickled the 100k-entry dict on the first render and unpickled it on every rerun
# (~0.05 s and ~0.08 s at 100k products); nothing here writes to it.
@st.cache_resource(ttl=600, show_spinner=False, max_entries=4)
def _statuses(db: str, token: tuple) -> tuple[Mapping[str, str], tuple[str, ...]]:
    del token  # part of the cache key only
    with conn(db) as con:
        statuses, failing = lineage.latest_statuses_and_failing(con)
    return types.MappingProxyType(statuses), tuple(failing)


def _load(db: str) -> tuple[lineage.LineageGraph, Mapping[str, str], Sequence[str]]:
    """The graph and the node colours, read at the same time: at 100k products each took
    ~0.7-1.3 s on a first render, much of it inside DuckDB, which lets go of the GIL. The graph
    is built in a worker (catalog code only, on a cursor made here: never two threads on one
    connection), which then works out the first screen's whole-mesh view and picker options
    (memoised on the graph) while the colours are read here, where Streamlit's cache runs.
    load_graph memoises on a change key, so a rerun costs a few ms unless something landed."""
    lineage_drawing.prepare_in_background()
    first_screen = _first_screen()
    with conn(db) as con, contextlib.closing(con.cursor()) as graph_cursor, \
            concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="lineage-graph") as pool:
        graph_job = pool.submit(_graph_with_first_screen, graph_cursor, first_screen)
        statuses, failing = _statuses(db, _token(db))
        return graph_job.result(), statuses, failing


def _first_screen() -> tuple[bool, str | None]:
    """(the picker offers its first nodes, the whole mesh is drawn at this level or None): what
    this run will ask of the graph when nothing is picked, typed or deep-linked."""
    empty_search = not st.session_state.get("lineage_find", "").strip()
    picked = st.session_state.get("lineage_node") or st.query_params.get("node")
    return empty_search, None if picked else st.session_state.get("lineage_level", "products")


def _graph_with_first_screen(cursor, first_screen: tuple[bool, str | None]) -> lineage.LineageGraph:
    graph = lineage.load_graph(cursor)
    empty_search, whole_mesh_level = first_screen
    if not graph.has_lineage:  # the page says so and draws nothing
        return graph
    if empty_search:
        lineage.find_nodes(graph, "", limit=PICKER_OPTIONS)
    if whole_mesh_level:
        lineage.view(graph, None, level=whole_mesh_level)
    return graph


@st.cache_data(ttl=5, show_spinner=False)
def _runs(db: str, namespace: str, name: str) -> pd.DataFrame:
    with conn(db) as con:
        return openlineage.runs(con, job_namespace=namespace, job_name=name, limit=20)


@st.cache_data(ttl=5, show_spinner=False)
def _quarantine(db: str) -> pd.DataFrame:
    with conn(db) as con:
        return openlineage.quarantined(con, limit=100)


def _label(graph: lineage.LineageGraph, node: str | None) -> str:
    if node is None:
        return "— whole mesh —"
    attrs = graph.flow.nodes[node] if node in graph.flow else graph.columns.nodes.get(node, {})
    return f"{KIND_LABELS.get(attrs.get('kind'), '')} · {attrs.get('name') or node}"


PICKER_OPTIONS = 50  # matches offered at once: a selectbox of 100k nodes froze the page


def _node_options(graph: lineage.LineageGraph, query: str, selected: str | None) -> list[str | None]:
    """The whole mesh, the current node, and the nodes matching what was typed (at most
    PICKER_OPTIONS): the picker searches as the user types instead of listing every node."""
    found = lineage.find_nodes(graph, query, limit=PICKER_OPTIONS)
    return [None, *([selected] if selected and selected not in found else []), *found]


def _apply_deep_link(graph: lineage.LineageGraph) -> None:
    """`?node=ID` selects a node on arrival; later selections write it back."""
    kept = st.session_state.get("lineage_node")
    if kept is not None and kept not in graph.flow:
        del st.session_state["lineage_node"]  # the store changed under a kept selection
    wanted = st.query_params.get("node")
    if not wanted or st.session_state.get("_lineage_link") == wanted:
        return
    st.session_state["_lineage_link"] = wanted
    try:
        st.session_state["lineage_node"] = lineage.resolve_node(graph, wanted)
    except lineage.UnknownNode as exc:
        st.warning(f"Deep link: {md(exc)}")


def _select_from_table(ids: list[str], key: str) -> None:
    """Selecting a row of the node table selects that node (callback: runs before widgets exist)."""
    rows = st.session_state.get(key, {}).get("selection", {}).get("rows", [])
    if rows and rows[0] < len(ids):
        st.session_state["lineage_node"] = ids[rows[0]]


def controls(graph: lineage.LineageGraph) -> tuple[str | None, str, str, int | None, bool]:
    c0, c1, c2, c3, c4, c5 = st.columns([1.6, 2.4, 1.4, 1.3, 1.6, 1.1])
    query = c0.text_input("Find a node", key="lineage_find", placeholder="name or id",
                          help="Type part of a name or id; the Node list shows the best matches.")
    options = _node_options(graph, query, st.session_state.get("lineage_node"))
    node = c1.selectbox("Node", options, key="lineage_node", format_func=lambda n: _label(graph, n),
                        help="Pick a product, dataset, job, model or external source; or click a row in the table.")
    level = c2.radio("View", list(LEVELS), key="lineage_level", format_func=LEVELS.get, horizontal=True)
    direction = c3.selectbox("Direction", list(DIRECTIONS), key="lineage_direction", format_func=DIRECTIONS.get)
    depth = c4.select_slider("Depth (hops)", DEPTHS, value=2, key="lineage_depth",
                             help="Edges away from the node. In the dataset view, dataset → job → dataset is 2.")
    expand = c5.toggle("Expand", value=True, key="lineage_expand",
                       help="Show the selected product's datasets and jobs instead of one product node.")
    if node:
        st.query_params["node"] = node
        st.session_state["_lineage_link"] = node
    elif "node" in st.query_params:
        del st.query_params["node"]
    return node, level, direction, None if depth == "all" else int(depth), expand


def graph_panel(graph: lineage.LineageGraph, statuses: Mapping[str, str], node, level, direction, depth, expand) -> None:
    shown = lineage.view(graph, node, level=level, direction=direction, depth=depth, expand=expand)
    drawn, hops = shown.graph, shown.hops
    if shown.left_out:
        st.warning(lineage_drawing.describe_left_out(shown.left_out, drawn.number_of_nodes(), shown.unlinked),
                   icon=":material/content_cut:")
    left, right = st.columns([3, 2])
    with left:
        html = lineage_drawing.to_pyvis_html(drawn, statuses=statuses, colours=STATUS_COLOURS, focus=node, height="600px")
        st.iframe(html, height=620)
        st.caption("Fill = latest check status (green passed, amber warning, red failed, violet error, grey not "
                   "checked) · (PII) and a dashed dark border = contains PII · ● product/dataset, ■ job, "
                   "▲ external source, star = model. Drag to pan, scroll to zoom, hover for details.")
    with right:
        table = lineage.node_table(graph, list(drawn.nodes), statuses=statuses, hops=hops)
        table["status"] = table["status"].fillna("not checked")
        table = shown_frame(table)
        ids = list(table["id"])
        key = f"lineage_table::{node}::{level}::{direction}::{depth}::{expand}"
        st.markdown(f"**{len(table)} nodes**, {drawn.number_of_edges()} edges")
        # Name, status and PII first: in this 2/5-wide column at 1440 px the rest scrolls.
        st.dataframe(
            table, key=key, on_select=lambda: _select_from_table(ids, key), selection_mode="single-row",
            hide_index=True, height=560,
            column_order=["name", "status", "pii", *(["hops"] if node else []), "kind", "product", "id"],
            column_config={"name": st.column_config.TextColumn("name", width=200),
                           "status": st.column_config.TextColumn("status", width=90),
                           "pii": st.column_config.CheckboxColumn("PII", width=45),
                           "hops": st.column_config.NumberColumn("hops", width=50),
                           "kind": st.column_config.TextColumn("kind", width=70),
                           "id": st.column_config.TextColumn("id", width="medium")})


def details_panel(db: str, graph: lineage.LineageGraph, statuses: Mapping[str, str], node: str) -> None:
    attrs = graph.flow.nodes[node]
    kind = attrs.get("kind")
    st.markdown(f"#### {md(_label(graph, node))}")
    facts = [md(node), badge(lineage.status_of(node, attrs, statuses)) if kind != "job" else ""]
    if attrs.get("product") and kind != "product":
        facts.append(f"part of [{md(attrs['product'].removeprefix('product:'))}](?node={url_param(attrs['product'])})")
    if attrs.get("pii"):
        facts.append(":red[:material/lock: contains PII]")
    if attrs.get("classification"):
        facts.append(f"classification **{md(attrs['classification'])}**")
    if attrs.get("version"):
        facts.append(f"version **{md(attrs['version'])}**")
    st.markdown(" · ".join(f for f in facts if f))
    if attrs.get("description"):
        st.caption(md(attrs["description"]))
    if kind == "job":
        runs = _runs(db, attrs.get("namespace"), attrs.get("name"))
        if not runs.empty:
            st.dataframe(shown_frame(runs[["state", "started_at", "ended_at", "seconds", "error_message", "run_id"]]),
                         hide_index=True, height=min(38 * (len(runs) + 1), 260))


def column_panel(graph: lineage.LineageGraph, node: str | None, direction: str) -> None:
    if node is None:
        st.info("Select a dataset or product above to trace its columns.")
        return
    kind = graph.flow.nodes[node].get("kind")
    datasets = graph.members.get(node, []) if kind == "product" else [node]
    columns = [c for ds in datasets for c in lineage.columns_of(graph, ds)]
    if not columns:
        st.info("No column lineage for this node: producers send it in the `columnLineage` facet of an "
                "output dataset.")
        return
    column = st.selectbox("Column", columns, key="lineage_column",
                          format_func=lambda c: f"{graph.columns.nodes[c]['name']}  ·  "
                                                f"{_label(graph, graph.columns.nodes[c]['dataset'])}")
    sub, _ = lineage.column_lineage(graph, column, direction=direction)
    left, right = st.columns([3, 2])
    with left:
        st.iframe(lineage_drawing.to_pyvis_html(sub, statuses={}, colours=STATUS_COLOURS, focus=column,
                                        height="380px"), height=400)
    with right:
        table = lineage.column_lineage_table(graph, column, direction=direction)
        table["dataset"] = [_label(graph, ds) for ds in table["dataset"]]
        st.dataframe(shown_frame(table.drop(columns=["id"])), hide_index=True,
                     column_config={"pii": st.column_config.CheckboxColumn("PII", width="small")})


IMPACT_CHOICES = 50  # failing products offered at once, worst first (a mesh can have 100k)


def impact_panel(graph: lineage.LineageGraph, statuses: Mapping[str, str], failing: Sequence[str],
                 node: str | None) -> None:
    choices = list(failing[:IMPACT_CHOICES])
    if node and graph.flow.nodes[node].get("kind") == "product" and node not in choices:
        choices.append(node)
    if not choices:
        st.success("No product's latest checks fail. Select a product above to see what would be hit if it did.")
        return
    if not failing:
        st.caption("No product's latest checks fail; showing what would be hit if the selected one did.")
    default = choices.index(node) if node in choices else 0
    source = st.selectbox("Failing product", choices, index=default, key="lineage_impact",
                          format_func=lambda n: f"{_label(graph, n)}  ({statuses.get(n, 'not checked')})")
    if len(failing) > IMPACT_CHOICES:
        st.caption(f"The {IMPACT_CHOICES} worst of {len(failing):,} failing products; pick any product in "
                   "**Find a node** above to see its impact here.")
    radius = lineage.blast_radius(graph, source, statuses=statuses)
    affected = radius.affected
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("Products hit", int((affected["kind"] == "product").sum()))
    m2.metric("Models hit", int((affected["kind"] == "model").sum()))
    m3.metric("Datasets & outputs", int(affected["kind"].isin(["dataset", "external"]).sum()))
    m4.metric("Jobs", int((affected["kind"] == "job").sum()))
    if affected.empty:
        st.info("Nothing downstream of this product.")
        return
    if radius.feeds_back:
        st.caption("Its data also flows back into it (a feedback loop).")
    shown = affected.assign(status=affected["status"].fillna("not checked"))
    st.dataframe(shown_frame(shown[["name", "status", "pii", "hops", "kind", "product", "id"]]), hide_index=True,
                 column_config={"pii": st.column_config.CheckboxColumn("PII", width="small")})


def main() -> None:
    page_user("lineage")  # refuses (and stops) a role that may not see this page
    st.title("Lineage")
    db = db_path()
    try:
        graph, statuses, failing = _load(db)
    except StoreError as exc:
        st.error(md(exc))
        return
    if not graph.has_lineage:
        st.info("No lineage yet. Ingest OpenLineage events (one event, a JSON array, or NDJSON) with "
                "`python -m catalog ingest events.json`, or seed the demo mesh with `python -m sample_data seed`.")
        return
    _apply_deep_link(graph)
    node, level, direction, depth, expand = controls(graph)
    graph_tab, column_tab, impact_tab = st.tabs(["Graph", "Column lineage", "Impact of failing checks"])
    with graph_tab:
        graph_panel(graph, statuses, node, level, direction, depth, expand)
        if node:
            details_panel(db, graph, statuses, node)
    with column_tab:
        column_panel(graph, node, direction)
    with impact_tab:
        impact_panel(graph, statuses, failing, node)
    quarantine = _quarantine(db)
    if not quarantine.empty:
        with st.expander(f"Quarantined OpenLineage events ({len(quarantine)})"):
            st.dataframe(shown_frame(quarantine), hide_index=True)


main()
