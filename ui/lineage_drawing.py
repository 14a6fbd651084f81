"""Drawing lineage: a self-contained pyvis page (no CDN) and its left-to-right layering.

Presentation, so it lives in ui/ (catalog.lineage holds the graph and its queries). Every
name on the canvas comes from events anyone can send: labels and tooltips are made inert.
"""

from __future__ import annotations

import functools
import json
import re
import threading

import networkx as nx

from catalog.lineage import status_of
from ui.text import md

KIND_SHAPES = {"product": "dot", "dataset": "dot", "external": "triangle", "model": "star", "job": "box",
               "column": "dot"}
KIND_SIZES = {"product": 30, "dataset": 16, "external": 14, "model": 24, "job": 10, "column": 10}
UNCHECKED = "#94a3b8"
KIND_FILL = {"job": "#e0e7ff", "external": "#e5e7eb", "column": "#f1f5f9"}
PII_BORDER = "#7f1d1d"

# A drawing made inside a tab that is hidden when the page renders has a 0×0 frame: vis-network
# lays it out at that size and, when the tab is shown, resizes the canvas but keeps the old
# view (measured: the column-lineage nodes sat at x = -105…105 of a 564 px canvas, half off
# it). Refit whenever the box's size changes — shown, or the window resized.
REFIT_ON_RESIZE = """<script>
(function () {
  var box = document.getElementById("mynetwork");
  if (!box || typeof ResizeObserver === "undefined") { return; }
  var drawn = "";
  new ResizeObserver(function () {
    if (typeof network === "undefined" || !box.clientWidth || !box.clientHeight) { return; }
    var size = box.clientWidth + "x" + box.clientHeight;
    if (size === drawn) { return; }
    drawn = size;
    network.setSize("100%", box.clientHeight + "px");
    network.redraw();
    network.fit({animation: false});
  }).observe(box);
})();
</script>
"""


@functools.cache
def _template_environment(template_dir: str):
    """One jinja environment for every drawing: pyvis makes a new one per Network, and compiling
    its template again took ~0.15 s of every lineage rerun; an environment keeps what it compiled."""
    from jinja2 import Environment, FileSystemLoader

    return Environment(loader=FileSystemLoader(template_dir))


_warm_up_started = threading.Event()
_warm_up_done = threading.Event()


def prepare_in_background() -> None:
    """Once per process, draw an empty graph in a daemon thread: importing pyvis (and IPython,
    which it imports) and compiling its page template took ~0.3 s of CPU on the first drawing.
    The app starts this once its first page is drawn (the lineage page is rarely the first); a
    deep link into the lineage page starts it before reading the store."""
    if _warm_up_started.is_set():
        return
    _warm_up_started.set()
    threading.Thread(target=_warm_up, name="lineage-drawing-warm-up", daemon=True).start()


def _warm_up() -> None:
    try:
        to_pyvis_html(nx.DiGraph(), statuses={}, colours={})
    finally:
        _warm_up_done.set()


def wait_until_prepared(timeout: float) -> bool:
    """True once the warm-up has run (benches measure pages as a running server has them)."""
    return _warm_up_done.wait(timeout)


def to_pyvis_html(sub: nx.DiGraph, *, statuses: dict[str, str], colours: dict[str, str],
                  focus: str | None = None, height: str = "620px", hierarchical: bool = True) -> str:
    """Self-contained interactive HTML (vis-network inlined: no CDN needed, nothing leaves the host)."""
    from pyvis.network import Network

    net = Network(height=height, width="100%", directed=True, cdn_resources="in_line", bgcolor="#ffffff")
    net.templateEnv = _template_environment(net.template_dir)
    levels = layer_levels(sub) if hierarchical else {}
    for node, attrs in sub.nodes(data=True):
        kind = attrs.get("kind") or "node"
        status = status_of(node, attrs, statuses)
        fill = colours.get(status, UNCHECKED) if kind in ("product", "dataset", "model") or status else \
            KIND_FILL.get(kind, UNCHECKED)
        pii = bool(attrs.get("pii"))
        # No emoji on the canvas: headless and server fonts often lack them (drawn as boxes).
        label = str(attrs.get("name") or node)[:44] + (" (PII)" if pii else "")
        title = "\n".join(filter(None, [
            f"{kind}: {attrs.get('name') or node}", f"id: {node}",
            f"check status: {status or 'not checked'}" if kind != "job" else None,
            f"product: {attrs['product'].removeprefix('product:')}" if attrs.get("product") else None,
            f"classification: {attrs.get('classification')}" if attrs.get("classification") else None,
            f"version: {attrs.get('version')}" if attrs.get("version") else None,
            "contains PII" if pii else None,
            (attrs.get("description") or "")[:200] or None]))
        net.add_node(node, label=_inert(label), title=_inert(title), shape=KIND_SHAPES.get(kind, "dot"),
                     size=KIND_SIZES.get(kind, 12) * (1.3 if node == focus else 1),
                     color={"background": fill, "border": PII_BORDER if pii else "#334155",
                            "highlight": {"background": fill, "border": "#0f172a"}},
                     borderWidth=4 if pii else (3 if node == focus else 1),
                     shapeProperties={"borderDashes": [6, 3]} if pii else {},
                     font={"size": 14 if kind == "product" else 12, "face": "sans-serif",
                           "color": "#0f172a" if kind != "job" else "#1e3a8a"},
                     **({"level": levels[node]} if levels else {}))
    for source, target, attrs in sub.edges(data=True):
        kind = attrs.get("kind")
        net.add_edge(source, target, title=_inert(kind or ""), arrows="to",
                     color="#94a3b8" if kind == "belongs_to" else "#475569",
                     dashes=kind in ("belongs_to", "column"), width=1 + min(attrs.get("weight", 1), 4) / 2)
    options = {
        "interaction": {"hover": True, "navigationButtons": True, "multiselect": False},
        "physics": {"enabled": not hierarchical, "stabilization": {"iterations": 150}},
        "edges": {"smooth": {"type": "cubicBezier", "forceDirection": "horizontal"} if hierarchical else True},
    }
    if hierarchical:
        options["layout"] = {"hierarchical": {"enabled": True, "direction": "LR", "sortMethod": "directed",
                                              "levelSeparation": 210, "nodeSpacing": 110, "treeSpacing": 120}}
    net.set_options(json.dumps(options))
    page = net.generate_html(notebook=False)
    # The template also links Bootstrap from a CDN; the graph does not need it, and a
    # governance console should not call out to third parties.
    page = re.sub(r"<link[^>]+cdn\.jsdelivr\.net[^>]*>", "", page)
    page = re.sub(r"<script[^>]+cdn\.jsdelivr\.net[^>]*>\s*</script>", "", page)
    page = page.replace("<h1></h1>", "").replace("<center>\n<h1></h1>\n</center>", "")
    return page.replace("</body>", REFIT_ON_RESIZE + "</body>", 1)


def layer_levels(graph: nx.DiGraph) -> dict[str, int]:
    """Left-to-right columns for the drawing: longest path from a source, after dropping the
    edges that close cycles. The mesh loops (interactions feed customer profiles again); left
    to vis-network's own 'directed' sort, a loop stretched the drawing into one long line.
    Which edges to drop: the greedy heuristic of Eades, Lin and Smyth (1993) — peel sinks
    and sources, else the node with most out- minus in-edges — keeps the main flow intact.
    networkx has no feedback-arc-set: its condensation would draw a whole loop in one
    column (measured on the seed: the five-product loop became one column), so the peeling
    is ours and the longest-path pass is networkx's topological order."""
    work = nx.DiGraph(graph)
    work.remove_edges_from(nx.selfloop_edges(work))
    head: list = []
    tail: list = []
    while work:
        sinks = [n for n in work if work.out_degree(n) == 0]
        sources = [n for n in work if work.in_degree(n) == 0 and work.out_degree(n) > 0]
        if sinks or sources:
            tail[:0] = sinks
            head += sources
            work.remove_nodes_from(sinks + sources)
            continue
        best = max(work, key=lambda n: (work.out_degree(n) - work.in_degree(n), str(n)))
        head.append(best)
        work.remove_node(best)
    rank = {node: i for i, node in enumerate(head + tail)}
    acyclic = nx.DiGraph()
    acyclic.add_nodes_from(graph)
    acyclic.add_edges_from((a, b) for a, b in graph.edges if rank[a] < rank[b])
    levels: dict[str, int] = {}
    for node in nx.topological_sort(acyclic):
        levels[node] = max((levels[p] + 1 for p in acyclic.predecessors(node)), default=0)
    return levels


def _inert(text: str) -> str:
    """Names and descriptions come from events anyone can send. pyvis switches its tooltips to
    innerHTML when a title contains "href", so no title may: angle brackets and that word are
    defused before they reach the page."""
    text = text.replace("<", "‹").replace(">", "›")
    return re.sub(r"(?i)h(?=ref)", "h\u200b", text)


def describe_left_out(left_out: dict[str, int], shown: int, unlinked: int = 0) -> str:
    """The warning above a cut drawing; `unlinked`: of the left out, the whole mesh's nodes
    without lineage (the whole mesh draws what lineage connects when it cannot draw all)."""
    total = sum(left_out.values())
    parts = md(", ".join(f"{n:,} {kind}{'s' if n != 1 else ''}"
                         for kind, n in sorted(left_out.items(), key=lambda i: -i[1])))  # Markdown source: kinds as text
    if unlinked:
        linked = total - unlinked
        which = (f"{unlinked:,} of them without any lineage, {linked:,} connected beyond the first {shown:,}"
                 if linked else "none of them with any lineage")
        return (f"The whole mesh is too large to draw: showing the {shown:,} nodes lineage connects. Not drawn: "
                f"{parts} ({which}). Find one with **Find a node** above, or pick a product to see its neighbourhood.")
    return (f"Showing the {shown:,} nodes nearest the selection; {total:,} more were left out ({parts}). "
            "Narrow it: lower the depth, pick upstream or downstream only, or use the product view.")

