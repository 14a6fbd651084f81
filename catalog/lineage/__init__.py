"""The lineage graph: built from the store, queried with plain functions.

Nodes (id prefix = kind):
  product:<product_id>                 a data product of the catalog
  dataset:<product_id>.<dataset>       a catalog dataset (output port), whether or not events name it
  external:<namespace>/<name>          an OpenLineage dataset no contract claims
  model:<namespace>/<name>             an OpenLineage dataset whose datasetType is MODEL
  job:<namespace>/<name>               an OpenLineage job
  <dataset node id>#<field>            a column (only in the column graph)
Edges follow the data: dataset -> job ("input"), job -> dataset ("output"), column ->
column ("column"). Membership is not a flow edge: a dataset or job carries `product`, and
`belongs_to` edges appear only in results, so upstream/downstream never leak through a
product into its siblings. A job belongs to the product whose datasets it writes (all of
its matched outputs in one product); folding the graph at product level replaces every
member by its product.

Which catalog dataset an OpenLineage dataset is: namespace `file` (or a file:// URI) and
the absolute path of the file a contract's server resolves to (catalog.locations), a name
that is a path suffix of it, or `<namespace>/<name>` against the server's host, database,
schema / project, dataset and the dataset's physical name.

Modules: model (shapes), build (graph from the store, cache; the lighter lineage match that the
overview and SLOs read), matching (OpenLineage dataset -> catalog dataset), statuses (latest check status per node), nodes (finding nodes, tables),
traversal (neighbourhoods, folding, paths, column lineage, blast radius). Drawing the graph
is presentation and lives in ui.lineage_drawing.
"""

from catalog.lineage.build import LineageMatch, build_graph, change_key, load_graph, load_match
from catalog.lineage.matching import LocationIndex, match_dataset
from catalog.lineage.model import FLOW_KINDS, MAX_DRAWN_NODES, Direction, LineageGraph, UnknownNode
from catalog.lineage.nodes import (
    columns_of,
    find_nodes,
    node_table,
    resolve_column,
    resolve_node,
    status_of,
)
from catalog.lineage.statuses import failing_products, latest_statuses, latest_statuses_and_failing
from catalog.lineage.traversal import (
    BlastRadius,
    View,
    blast_radius,
    column_lineage,
    column_lineage_table,
    dataset_column_lineage,
    induced,
    limit_nodes,
    lineage_subgraph,
    neighbourhood,
    path_between,
    product_neighbourhood,
    product_view,
    to_json,
    view,
)

__all__ = [
    "FLOW_KINDS", "MAX_DRAWN_NODES", "BlastRadius", "Direction", "LineageGraph", "LineageMatch", "LocationIndex",
    "UnknownNode", "View", "blast_radius", "build_graph", "change_key", "column_lineage",
    "column_lineage_table", "columns_of", "dataset_column_lineage", "failing_products", "find_nodes", "induced",
    "latest_statuses", "latest_statuses_and_failing", "limit_nodes", "lineage_subgraph", "load_graph", "load_match", "match_dataset",
    "neighbourhood", "node_table", "path_between", "product_neighbourhood", "product_view",
    "resolve_column", "resolve_node", "status_of", "to_json", "view",
]
