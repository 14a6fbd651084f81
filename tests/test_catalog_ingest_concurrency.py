"""Several sessions of one process (the app's threads) ingesting at once lose nothing."""

from __future__ import annotations

import textwrap
import threading

from catalog.ingest import ingest_paths
from catalog.store import connect

_CONTRACT = textwrap.dedent("""\
    apiVersion: v3.1.0
    kind: DataContract
    id: {cid}
    version: 1.0.0
    status: active
    domain: Shared New Domain
    dataProduct: Product {n}
    schema:
      - name: t{n}
        physicalType: table
        properties:
          - name: id_{n}
            logicalType: integer
            classification: internal
    """)


def test_threads_ingesting_into_one_new_domain_all_land(tmp_path):
    files = []
    for n in range(6):
        path = tmp_path / f"c{n}.odcs.yaml"
        path.write_text(_CONTRACT.format(cid=f"c-{n}", n=n))
        files.append(path)
    db = tmp_path / "m.duckdb"
    reports, errors = [], []
    with connect(db) as con:
        def work(path):
            try:
                reports.append(ingest_paths(con.cursor(), [path]))
            except Exception as exc:  # noqa: BLE001 - collected for the assert message
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(f,)) for f in files]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors, errors
        rejected = [r for rep in reports for r in rep.rejected]
        assert not rejected, f"concurrent ingests must not reject valid files: {rejected}"
        assert con.execute("SELECT count(*) FROM products").fetchall()[0][0] == 6, "every product landed"
        assert con.execute("SELECT count(*) FROM domains").fetchall()[0][0] == 1, "one shared domain"
