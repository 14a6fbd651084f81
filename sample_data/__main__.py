"""`python -m sample_data`: generate the demo mesh and ingest it through the real ingest path.

The seed command stands above `catalog` and `checks` (it writes through them), so it lives
here rather than in `python -m catalog`, which must not depend on the demo's generator.
Exit codes: 0 seeded, 2 usage or store error.
"""

from __future__ import annotations

import argparse
import sys

from catalog.settings import resolve_db_path
from catalog.store import StoreError
from sample_data import generate


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m sample_data",
        description="Deterministic demo mesh: Customer -> AI/ML -> Marketing -> Customer, plus Commerce; "
                    "generated (data, contracts, lineage) and ingested like users' files.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("seed", help="generate the sample mesh and ingest it")
    p.add_argument("--db", help="DuckDB file (default: $MESHGOV_DB or data/meshgov.duckdb)")
    p.add_argument("--products", type=int, default=0, metavar="N",
                   help="add N synthetic products (~20 columns each) for scale tests")
    p.add_argument("--out", help="folder for generated files (default: next to the DB, sample/)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.products < 0:
        print("python -m sample_data: error: --products must be 0 or more", file=sys.stderr)
        return 2
    try:
        print(generate.seed(resolve_db_path(args.db), extra_products=args.products, out_dir=args.out))
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
