"""Legal's page sections: evidence-pack download, recommendation trace, sandbox extract.

Self-contained render functions that pages call with the page's user; the permission checks
live in legal/ (a hidden button is convenience, never the guard). Data strings are shown as
plain text or in tables, never as markdown.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import streamlit as st

from catalog import access, queries
from catalog.settings import data_dir
from catalog.store import StoreError
from legal import evidence, extract, trace
from ui.db import conn
from ui.text import md


def evidence_download(user: access.User, *, product_id: str | None = None, key: str = "evidence") -> None:
    """A download button for the evidence pack of one product, or (without `product_id`) a
    scope picker (product, domain, whole mesh) with an optional point in time."""
    if not access.can(user, "export_evidence"):
        st.caption("Evidence packs need one of the roles "
                   f"{', '.join(access.roles_allowing('export_evidence'))}.")
        return
    scope: dict = {"product": product_id}
    at: dt.datetime | None = None
    if product_id is None:
        with conn() as con:
            products = queries.product_ids(con)
            domain_names = queries.domains(con)
        left, middle, right = st.columns([1, 2, 1.2])
        kind = left.selectbox("Evidence for", ["product", "domain", "whole mesh"], key=f"{key}_kind")
        if kind == "product":
            scope = {"product": middle.selectbox("Product", products, key=f"{key}_product")}
        elif kind == "domain":
            scope = {"domain": middle.selectbox("Domain", domain_names, key=f"{key}_domain")}
        else:
            scope = {"everything": True}
        day = right.date_input("As of (UTC, optional)", value=None, key=f"{key}_at")
        at = dt.datetime.combine(day, dt.time.max) if day else None
        if not any(scope.values()):
            return

    def _pack() -> bytes:
        # Runs when the button is clicked, so the audit row records a real download.
        with conn() as con:
            return evidence.build_pack(con, user=user, at=at, **scope).html.encode("utf-8")

    name = (scope.get("product") or scope.get("domain") or "mesh")
    st.download_button("Evidence pack (HTML, audited)", data=_pack, mime="text/html", key=f"{key}_download",
                       icon=":material/download:",
                       file_name=f"meshgov-evidence-{name}.html", on_click="ignore",
                       help="One self-contained file: contract and hash, owners, checks, bias, consent, SLOs, "
                            "lineage, audit excerpt with the chain verification. Opens offline.")


def trace_form(user: access.User, *, key: str = "trace") -> None:
    """Trace one user (and optionally one send): segment, model version, sources, consent verdicts."""
    st.subheader("Trace a recommendation")
    left, right = st.columns(2)
    user_key = left.text_input("User key or pseudonym", key=f"{key}_user", placeholder="u-00042 or p:…")
    send = right.text_input("Send (optional)", key=f"{key}_send", placeholder="snd-000123")
    if not st.button("Trace", key=f"{key}_go") or not user_key.strip():
        return
    render_trace(user, user_key, send.strip() or None)


def render_trace(user: access.User, user_key: str, send: str | None) -> None:
    try:
        with conn() as con:
            found = trace.trace(con, user_key=user_key, send=send, user=user)
    except (trace.TraceError, access.PermissionDenied, StoreError) as exc:
        st.warning("Cannot trace this user:", icon=":material/warning:")
        st.text(str(exc))
        return
    if found.compliant:
        st.success(f"Compliant: every use of {md(found.pseudonym)} had a valid consent at the time.")
    else:
        st.error(f"Not compliant: {len(found.violations)} use(s) of {md(found.pseudonym)} without a valid consent.")
    chain = found.chain
    st.text(trace.render_text(found))
    if found.uses:
        st.dataframe(pd.DataFrame([u.__dict__ for u in found.uses]), hide_index=True, width="stretch")
    for item in chain.get("features") or []:
        st.caption(f"Features in {md(item['product'])}.{md(item['dataset'])}")
        st.dataframe(pd.DataFrame(item["rows"]), hide_index=True, width="stretch")


def extract_button(user: access.User, product_id: str, *, key: str = "extract") -> None:
    """Write an anonymised sandbox extract of one dataset of the product (steward, data_scientist)."""
    if not access.can(user, "make_extract"):
        return
    with conn() as con:
        datasets = queries.datasets(con, product_id)["dataset"].tolist()
    if not datasets:
        return
    left, middle, right = st.columns([2, 1, 1])
    dataset = left.selectbox("Dataset to extract", datasets, key=f"{key}_dataset")
    k_min = middle.number_input("Minimum k", min_value=1, max_value=1000, value=extract.POLICY.k_min,
                                key=f"{key}_kmin")
    if not right.button("Anonymised extract", key=f"{key}_go"):
        return
    out = data_dir() / "sandbox" / f"{extract.extract_product_id(product_id, dataset)}.parquet"
    try:
        with conn() as con:
            report = extract.make_extract(con, product_id=product_id, dataset=dataset, out=out,
                                          k_min=int(k_min), user=user)
    except (extract.ExtractError, access.PermissionDenied, StoreError) as exc:
        st.warning("No extract:", icon=":material/warning:")
        st.text(str(exc))
        return
    (st.success if report.status == "passed" else st.error)(f"k-anonymity {report.status}: k = {report.k} "
                                                             f"(minimum {report.k_min})")
    st.text(report.result.reason)
    st.json(report.to_json())
