"""`python -m catalog lineage NODE ...`: the lineage graph from the command line.

Exit codes as the rest of the CLI: 0 answered, 2 usage error or unknown node (with close
matches named on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

from catalog import lineage
from catalog.store import connect


def add_parser(subparsers, db_arg) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "lineage", help="up/downstream lineage, column lineage, paths and blast radius of a node",
        description="Show the lineage of NODE: a product id, `product:<id>`, `dataset:<product>.<dataset>`, "
                    "`job:<namespace>/<name>`, `external:<namespace>/<name>`, a job or dataset name, or a "
                    "column as `<dataset>#<column>`. Depth counts edges (dataset -> job -> dataset is 2).")
    p.add_argument("node", nargs="?", metavar="NODE")
    direction = p.add_mutually_exclusive_group()
    direction.add_argument("--upstream", action="store_true", help="only what NODE is derived from")
    direction.add_argument("--downstream", action="store_true", help="only what is derived from NODE")
    p.add_argument("--depth", type=int, metavar="K", help="at most K edges away (default: all)")
    p.add_argument("--columns", action="store_true",
                   help="column-level lineage (of a column, or of every column of a dataset or product)")
    p.add_argument("--products", action="store_true", help="fold datasets and jobs into their products")
    p.add_argument("--to", metavar="OTHER", help="print a data-flow path between NODE and OTHER")
    p.add_argument("--impact", action="store_true",
                   help="blast radius: every product, model, dataset and job downstream of NODE")
    p.add_argument("--list", action="store_true", help="list every node of the graph")
    p.add_argument("--json", action="store_true",
                   help='print {"nodes":[{"id","kind","name"}],"edges":[{"source","target","kind"}]}')
    db_arg(p)
    p.set_defaults(handler=run)
    return p


def run(args, db_path) -> int:
    if args.depth is not None and args.depth < 0:
        print("error: --depth must be 0 or more", file=sys.stderr)
        return 2
    if not args.node and not args.list:
        print("error: name a NODE (or use --list to see them)", file=sys.stderr)
        return 2
    with connect(db_path) as con:
        graph = lineage.load_graph(con)
        statuses = lineage.latest_statuses(con)
    if args.list:
        return _list(graph, statuses, as_json=args.json)
    try:
        node = lineage.resolve_node(graph, args.node)
        other = lineage.resolve_node(graph, args.to) if args.to else None
    except lineage.UnknownNode as exc:
        print(f"error: {exc}", file=sys.stderr)
        if not graph.has_lineage:
            print("hint: no lineage yet; run `python -m catalog ingest events.json` or `python -m sample_data seed`",
                  file=sys.stderr)
        return 2
    direction = "upstream" if args.upstream else "downstream" if args.downstream else "both"

    if other is not None:
        return _path(graph, node, other, as_json=args.json)
    if args.impact:
        return _impact(graph, node, statuses, as_json=args.json)
    if args.columns or "#" in node:
        if "#" in node:
            sub, hops = lineage.column_lineage(graph, node, direction=direction, depth=args.depth)
        else:
            sub, hops = lineage.dataset_column_lineage(graph, node, direction=direction, depth=args.depth)
    elif args.products:
        sub, hops = lineage.product_neighbourhood(graph, node, direction=direction, depth=args.depth)
    else:
        sub, hops = lineage.lineage_subgraph(graph, node, direction=direction, depth=args.depth)
    if args.json:
        print(json.dumps(lineage.to_json(sub), indent=2, ensure_ascii=False))
        return 0
    _print_graph(sub, hops, statuses, focus=node, direction=direction)
    return 0


def _list(graph: lineage.LineageGraph, statuses: dict[str, str], *, as_json: bool) -> int:
    table = lineage.node_table(graph, statuses=statuses)
    if as_json:
        print(json.dumps({"nodes": table[["id", "kind", "name"]].to_dict("records"), "edges": []},
                         indent=2, ensure_ascii=False))
        return 0
    if table.empty:
        print("no lineage nodes yet; run `python -m catalog ingest events.json` or `python -m sample_data seed`")
        return 0
    for row in table.itertuples():
        print(f"{row.kind:<9} {row.id}" + (f"  [{row.status}]" if row.status else ""))
    return 0


def _path(graph, node: str, other: str, *, as_json: bool) -> int:
    path = lineage.path_between(graph, node, other)
    if as_json:
        g = graph.flow if path is None or all(p in graph.flow for p in path) else lineage.product_view(graph)
        nodes = path or []
        sub = {"nodes": [{"id": n, "kind": g.nodes[n].get("kind"), "name": g.nodes[n].get("name")} for n in nodes],
               "edges": [{"source": a, "target": b, "kind": g.edges[a, b].get("kind")}
                         for a, b in zip(nodes, nodes[1:], strict=False)]}
        print(json.dumps(sub, indent=2, ensure_ascii=False))
        return 0
    if path is None:
        print(f"no data-flow path between {node} and {other} in either direction")
        return 0
    print(" -> ".join(path))
    return 0


def _impact(graph, node: str, statuses: dict[str, str], *, as_json: bool) -> int:
    radius = lineage.blast_radius(graph, node, statuses=statuses)
    if as_json:
        sub, _ = lineage.lineage_subgraph(graph, node, direction="downstream")
        print(json.dumps(lineage.to_json(sub), indent=2, ensure_ascii=False))
        return 0
    status = statuses.get(node)
    print(f"blast radius of {node}" + (f" (latest checks: {status})" if status else " (not checked yet)"))
    if radius.affected.empty:
        print("  nothing downstream")
        return 0
    for kind in ("product", "model", "dataset", "external", "job"):
        rows = radius.affected[radius.affected["kind"] == kind]
        if not rows.empty:
            print(f"  {kind}s ({len(rows)}):")
            for row in rows.itertuples():
                print(f"    {row.hops:>2} hops  {row.id}" + (f"  [{row.status}]" if isinstance(row.status, str) else "  [not checked]"))
    if radius.feeds_back:
        print("  note: its data flows back into it (a cycle)")
    return 0


def _print_graph(sub, hops: dict[str, int], statuses: dict[str, str], *, focus: str, direction: str) -> None:
    print(f"{direction} lineage of {focus}: {sub.number_of_nodes()} nodes, {sub.number_of_edges()} edges")
    for node in sorted(sub.nodes, key=lambda n: (hops.get(n, 0), n)):
        attrs = sub.nodes[node]
        status = lineage.status_of(node, attrs, statuses)
        mark = "  PII" if attrs.get("pii") else ""
        print(f"  {hops.get(node, 0):>2}  {attrs.get('kind', ''):<8} {node}" + (f"  [{status}]" if status else "") + mark)
    print("edges:")
    for source, target, kind in sorted(sub.edges(data="kind")):
        print(f"  {source} -[{kind}]-> {target}")
