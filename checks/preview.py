"""A few rows of a dataset, read from the file its contract names, PII masked here.

PII is what the catalog declares plus the columns in which the PII scanner finds personal
data in the rows read. Files outside the data roots (see `catalog.locations`) are refused
before anything is opened. Masking happens in this function, not in the page, so no caller can get raw PII by
skipping a widget: only a user who may view PII and asks to reveal gets the rows unmasked,
and that view is written to the audit trail.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from catalog import access, masking
from catalog.locations import dataset_locations
from catalog.store import connect
from checks import compiler


class PreviewUnavailable(Exception):
    """Why no rows can be shown (message says what to fix)."""


def dataset_preview(db_path: str | Path, *, product_id: str, dataset: str, user: access.User,
                    reveal: bool = False, limit: int = 20) -> tuple[pd.DataFrame, list[str]]:
    """(rows, PII columns present): masked unless `reveal` and the user may view PII."""
    raw = _read(db_path, product_id=product_id, dataset=dataset, limit=limit)
    with connect(db_path) as con:
        # Declared PII, and whatever the scanner finds in these rows: a contract that does
        # not declare its PII must not unmask it.
        detected = compiler.detected_pii_kinds(raw)
        pii = [*masking.pii_columns(con, product_id=product_id, dataset=dataset), *detected]
        shown = masking.mask_frame(raw, pii, user, con=con if reveal else None,
                                   target=f"{product_id}.{dataset}", kinds=detected)
    wanted = {p.lower() for p in pii}
    return shown, [c for c in raw.columns if str(c).lower() in wanted]


def _read(db_path: str | Path, *, product_id: str, dataset: str, limit: int) -> pd.DataFrame:
    with connect(db_path) as con:
        contract = con.execute("SELECT contract_id FROM datasets WHERE product_id = ? AND dataset = ? LIMIT 1",
                               [product_id, dataset]).fetchall()
        if not contract:
            raise PreviewUnavailable(f"{product_id} has no dataset {dataset!r}")
        location = dataset_locations(con, contract[0][0]).get(dataset)
    if location is None:
        raise PreviewUnavailable(f"the contract names no local file for {dataset}: add a `servers` entry "
                                 "of type local (path + format) or duckdb")
    if location.refused:
        raise PreviewUnavailable(location.refused)
    if location.engine == "postgres":  # read where the data lives (checks.engines)
        from checks.engines import EngineError, head_rows
        try:
            return head_rows(location, limit=limit)
        except EngineError as exc:
            raise PreviewUnavailable(str(exc)) from None
    if location.kind != "duckdb" and not Path(location.path).is_file():
        raise PreviewUnavailable(f"data file {location.path} does not exist")
    with compiler.trusted_connection(threads=1) as con:
        setup, relation = compiler.relation_sql(location)
        for statement in setup:
            con.execute(statement)
        return con.execute(f"SELECT * FROM {relation} LIMIT {int(limit)}").df()  # noqa: S608 - quoted relation
