"""Evidence pack: one self-contained HTML file per product, domain or the whole mesh, at a point
in time, for legal.

Sections per product: contract version in force (raw text, stored and recomputed SHA-256),
owners and classification (read from that contract text, so `--at` shows what was promised
then), latest and historical check results, bias audit with charts, consent coverage, SLO
compliance, lineage snapshot, the audit-trail excerpt with the chain-verification result;
generated-at and generator version in the header and footer.

Offline by construction: plotly's JavaScript is inlined once (the first chart), no link,
font or script points outside the file. Every string that came from a contract, card, event,
check or user is escaped with html.escape, chart labels too (plotly reads a few tags such as
<a href> in labels and decodes entities back to text); chart data travels as JSON inside
plotly's script block, where plotly escapes `<`, `>` and `&`.

What each section shows is read by legal.evidence_data, as of the pack's time; this module
scopes, renders and records. Permission `export_evidence` is checked here; each export is
appended to the audit trail (after rendering, so the pack does not contain its own export
row) with the file's SHA-256.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any

import duckdb
import pandas as pd
import plotly.graph_objects as go

from catalog import access, audit, audit_verify, queries
from catalog.status import STATUSES
from checks.compiler import now_utc
from legal.evidence_data import (
    AUDIT_ROWS,
    audit_excerpt,
    bias_audits,
    consent_coverage,
    consent_history,
    contract_in_force,
    latest_results,
    lineage_snapshot,
    owners_and_columns,
    result_history,
    slo_compliance,
)

FORMAT = "meshgov-evidence-1"
HISTORY_RUNS = 60
STATUS_COLOURS = {"passed": "#2e7d32", "warning": "#f9a825", "failed": "#c62828", "error": "#6a1b9a",
                  "skipped": "#757575"}
SECTIONS = ("contract", "owners", "classification", "checks", "check-history", "bias", "consent", "slo",
            "lineage", "audit")


class EvidenceError(ValueError):
    """A scope that names nothing, or a time that cannot be read; the message says which."""


def generator_version() -> str:
    try:
        version = metadata.version("meshgov")
    except metadata.PackageNotFoundError:
        version = "0.1.0 (source tree)"
    return f"meshgov {version}, {FORMAT}"


def parse_at(text: str | None) -> dt.datetime | None:
    """`--at`: an ISO date or date-time (UTC; a date means the end of that day)."""
    if text is None or not str(text).strip():
        return None
    raw = str(text).strip()
    try:
        if len(raw) == 10:
            return dt.datetime.combine(dt.date.fromisoformat(raw), dt.time.max)
        value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise EvidenceError(f"--at {raw!r}: expected an ISO date or time, e.g. 2026-11-30 or "
                            "2026-11-30T12:00:00Z") from None
    return value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value


def scope_products(con: duckdb.DuckDBPyConnection, *, product: str | None = None, domain: str | None = None,
                   everything: bool = False) -> list[str]:
    if sum(bool(x) for x in (product, domain, everything)) != 1:
        raise EvidenceError("name exactly one of --product ID, --domain D or --all")
    if product:
        if queries.product(con, product) is None:
            raise EvidenceError(f"no product {product!r} in the catalog")
        return [product]
    if domain:
        found = [r[0] for r in con.execute(
            "SELECT p.product_id FROM products p JOIN domains d USING (domain_id) "
            "WHERE lower(d.name) = lower(?) OR d.domain_id = ? ORDER BY 1", [domain, domain]).fetchall()]
        if not found:
            raise EvidenceError(f"no domain {domain!r} with products; known: {', '.join(queries.domains(con))}")
        return found
    return [r[0] for r in con.execute("SELECT product_id FROM products ORDER BY 1").fetchall()]


# --- rendering -----------------------------------------------------------------------------

def esc(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return ""
    if isinstance(value, dt.datetime):
        return html.escape(value.isoformat(sep=" ", timespec="seconds"))
    return html.escape(str(value), quote=True)


def table(frame: pd.DataFrame | None, *, empty: str, columns: list[str] | None = None, max_rows: int = 500) -> str:
    if frame is None or frame.empty:
        return f'<p class="empty">{esc(empty)}</p>'
    frame = frame[columns] if columns else frame
    head = "".join(f"<th>{esc(c)}</th>" for c in frame.columns)
    body = []
    for row in frame.head(max_rows).itertuples(index=False):
        cells = []
        for column, value in zip(frame.columns, row, strict=True):
            css = f' class="s-{esc(value)}"' if column == "status" and value in STATUSES else ""
            cells.append(f"<td{css}>{esc(value)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="note">{len(frame) - max_rows:,} more rows not shown.</p>' if len(frame) > max_rows else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>{more}"


@dataclass
class _Charts:
    """Plotly figures as HTML fragments; the library's JavaScript goes into the first only."""
    count: int = 0
    ids: list[str] = field(default_factory=list)

    def render(self, fig: go.Figure, chart_id: str) -> str:
        fig.update_layout(height=320, margin={"l": 40, "r": 20, "t": 50, "b": 40}, template="plotly_white")
        fragment = fig.to_html(full_html=False, include_plotlyjs=self.count == 0, include_mathjax=False,
                               div_id=chart_id, config={"displaylogo": False,
                                                         "displayModeBar": False})
        self.count += 1
        self.ids.append(chart_id)
        return f'<div class="chart" data-chart="{esc(chart_id)}">{fragment}</div>'


def _section(key: str, product_id: str, title: str, body: str) -> str:
    return (f'<section class="section" data-section="{esc(key)}" id="{esc(product_id)}-{esc(key)}">'
            f"<h3>{esc(title)}</h3>{body}</section>")


def _product_html(con, product_id: str, at: dt.datetime, charts: _Charts, chain: audit_verify.VerifyResult) -> str:
    info = queries.product(con, product_id) or {}
    contract = contract_in_force(con, product_id, at)
    parts = [f'<article class="product" data-product="{esc(product_id)}">',
             f"<h2>{esc(info.get('name') or product_id)} <code>{esc(product_id)}</code></h2>",
             f"<p>Domain <b>{esc(info.get('domain'))}</b> · lifecycle {esc(info.get('status'))}</p>"]
    if contract is None:
        parts.append(_section("contract", product_id, "Contract in force",
                              f'<p class="empty">No contract of this product had been ingested by {esc(at)}.</p>'))
        owners = columns = pd.DataFrame()
    else:
        same = contract["recomputed_hash"] == contract["content_hash"]
        verdict = ("matches the stored hash" if same else
                   "DOES NOT match the stored hash: the stored text was changed after ingest")
        parts.append(_section("contract", product_id, "Contract in force", (
            f"<p>Contract <code>{esc(contract['contract_id'])}</code> version <b>{esc(contract['version'])}</b> "
            f"(revision {esc(contract['revision'])}, status {esc(contract['status'])}, ODCS "
            f"{esc(contract['api_version'])}, validated against {esc(contract['validated_against'])}), ingested "
            f"{esc(contract['ingested_at'])} by {esc(contract['ingested_by'])}.</p>"
            f'<p>SHA-256 <code class="hash" data-hash="contract">{esc(contract["content_hash"])}</code> — '
            f'recomputed from the text below: <span class="{"ok" if same else "bad"}">{esc(verdict)}</span>.</p>'
            "<h4>Revisions up to this time</h4>"
            + table(contract["history"], empty="none")
            + f'<details open><summary>Raw contract text</summary><pre class="raw">{esc(contract["raw_yaml"])}</pre>'
              "</details>")))
        owners, columns = owners_and_columns(contract["raw_yaml"])
    parts.append(_section("owners", product_id, "Owners",
                          table(owners, empty="The contract in force names no owner.")))
    parts.append(_section("classification", product_id, "Classification",
                          table(columns, empty="The contract in force declares no columns.")))

    latest = latest_results(con, product_id, at)
    counts = latest["status"].value_counts().to_dict() if not latest.empty else {}
    summary = " · ".join(f'<span class="s-{esc(s)}">{esc(s)} {counts[s]}</span>' for s in STATUSES if s in counts)
    parts.append(_section("checks", product_id, "Latest check results",
                          (f"<p>{summary}</p>" if summary else "")
                          + table(latest, empty=f"No complete check run had checked this product by {at}.")))
    history = result_history(con, product_id, at)
    body = table(None, empty=f"No complete check run had checked this product by {at}.")
    if not history.empty:
        fig = go.Figure()
        for status in STATUSES:
            part = history[history["status"] == status]
            if not part.empty:
                fig.add_bar(x=part["started_at"], y=part["results"], name=status,
                            marker_color=STATUS_COLOURS[status])
        fig.update_layout(barmode="stack", title="Check results per run, by status")
        body = charts.render(fig, f"chart-{product_id}-checks") + table(
            history.pivot_table(index=["run_id", "started_at"], columns="status", values="results",
                                fill_value=0).reset_index().sort_values("started_at", ascending=False),
            empty="", max_rows=HISTORY_RUNS)
    parts.append(_section("check-history", product_id, "Check history", body))

    audits = bias_audits(con, product_id, at)
    bias_parts = []
    for item in audits:
        latest_audit = item["latest"]
        card = item["card"]
        card_text = (f"card revision {esc(card[0])} (version {esc(card[1])}, SHA-256 <code>{esc(card[2])}</code>), "
                     f"missing sections: {esc(', '.join(card[4]) if card[4] is not None and len(card[4]) else 'none')}"
                     if card else "no model card ingested by then")
        bias_parts.append(f"<h4>Model {esc(item['model_id'])}</h4><p>{card_text}</p>")
        if latest_audit is None:
            bias_parts.append('<p class="empty">No bias audit of this model had run by then.</p>')
            continue
        diag = latest_audit["diagnostics"]
        bias_parts.append(
            f'<p><span class="s-{esc(latest_audit["status"])}">{esc(latest_audit["status"])}</span> — '
            f"{esc(diag.get('summary') or latest_audit['reason'])} (model version {esc(latest_audit['model_version'])}, "
            f"threshold {esc(latest_audit['threshold'])}, audited {esc(latest_audit['finished_at'])})</p>")
        groups = pd.DataFrame([{"group": ", ".join(f"{k}={v}" for k, v in (g.get("group") or {}).items()),
                                "rows": g.get("count"), "selection_rate": g.get("selection_rate"),
                                "scored": g.get("scored")} for g in diag.get("by_group") or []])
        if not groups.empty:
            fig = go.Figure(go.Bar(x=groups["group"].map(esc), y=groups["selection_rate"], marker_color="#1565c0"))
            fig.update_layout(title=f"Selection rate by group — {esc(item['model_id'])}", yaxis_title="selection rate")
            bias_parts.append(charts.render(fig, f"chart-{product_id}-bias-{item['model_id']}"))
            bias_parts.append(table(groups, empty=""))
        hist = item["history"]
        if len(hist) > 1:
            measured = pd.to_numeric(hist["measured"], errors="coerce")
            fig = go.Figure(go.Scatter(x=hist["finished_at"], y=measured, mode="lines+markers"))
            fig.update_layout(title=f"Demographic parity ratio over time — {esc(item['model_id'])}")
            bias_parts.append(charts.render(fig, f"chart-{product_id}-bias-history-{item['model_id']}"))
        bias_parts.append(table(diag.get("disparities") and pd.DataFrame([diag["disparities"]]), empty=""))
    parts.append(_section("bias", product_id, "Bias audit", "".join(bias_parts) or
                          '<p class="empty">No model is counted under this product: no bias audit applies.</p>'))

    coverage = consent_coverage(con, product_id, at)
    consent_body = table(coverage, empty="This product declares no consent requirement (meshgov.consent.requires), "
                                         "or none was checked by then.",
                         columns=None if coverage.empty else ["dataset", "purpose", "status", "users",
                                                              "violating_users", "never_users", "withdrawn_users",
                                                              "violating_uses", "coverage", "reason", "finished_at"])
    c_hist = consent_history(con, product_id, at)
    if not c_hist.empty:
        fig = go.Figure()
        for (ds, purpose), part in c_hist.groupby(["dataset", "purpose"]):
            fig.add_scatter(x=part["run_at"], y=part["coverage"], mode="lines+markers", name=esc(f"{ds} / {purpose}"))
        fig.update_layout(title="Consent coverage per check run", yaxis_title="share of users covered")
        consent_body = charts.render(fig, f"chart-{product_id}-consent") + consent_body
    parts.append(_section("consent", product_id, "Consent coverage", consent_body))

    slos = slo_compliance(con, product_id, at)
    slo_body = table(slos, empty="No SLO observations for this product in the 90 days before this time.")
    if not slos.empty:
        fig = go.Figure(go.Bar(x=(slos["slo"] + " " + slos["element"].astype(str)).map(esc), y=slos["compliance_30d"],
                               marker_color=["#2e7d32" if m else "#c62828" for m in slos["met"]]))
        fig.update_layout(title="SLO compliance over 30 days", yaxis_title="share of good observations")
        slo_body = charts.render(fig, f"chart-{product_id}-slo") + slo_body
    parts.append(_section("slo", product_id, "SLO compliance", slo_body))

    parts.append(_section("lineage", product_id, "Lineage snapshot", (
        '<p class="note">Lineage as known when this pack was generated (OpenLineage events carry no '
        "history of removed edges).</p>"
        + table(lineage_snapshot(con, product_id), empty="No lineage recorded for this product."))))

    excerpt = audit_excerpt(con, product_id, at)
    chain_text = (f"intact — {chain.summary()}" if chain.ok else
                  f"BROKEN at seq {chain.first_broken_seq} ({chain.kind}): {chain.reason}")
    parts.append(_section("audit", product_id, "Audit trail", (
        f'<p>Chain verification: <span class="{"ok" if chain.ok else "bad"}" data-chain="{"ok" if chain.ok else "broken"}">'
        f"{esc(chain_text)}</span></p>"
        f"<p>Rows naming this product up to {esc(at)} (newest {AUDIT_ROWS}):</p>"
        + table(excerpt, empty="No audit rows name this product.",
                columns=None if excerpt.empty else ["seq", "logged_at", "actor", "via", "action", "target",
                                                    "after", "hash"]))))
    parts.append("</article>")
    return "".join(parts)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2rem auto;max-width:1200px;color:#222;padding:0 1rem}
h1{margin-bottom:.2rem} h2{border-top:3px solid #1565c0;padding-top:.8rem;margin-top:2.5rem}
h3{margin-top:1.6rem;border-bottom:1px solid #ddd} table{border-collapse:collapse;font-size:.82rem;margin:.5rem 0;width:100%}
th,td{border:1px solid #ddd;padding:.25rem .4rem;text-align:left;vertical-align:top;word-break:break-word}
th{background:#f3f6fa} pre.raw{background:#f7f7f7;padding:.8rem;overflow:auto;max-height:40rem;font-size:.78rem}
.s-passed{color:#2e7d32;font-weight:600}.s-failed{color:#c62828;font-weight:600}.s-error{color:#6a1b9a;font-weight:600}
.s-warning{color:#b26a00;font-weight:600}.s-skipped{color:#757575}.ok{color:#2e7d32;font-weight:600}
.bad{color:#c62828;font-weight:700}.empty,.note{color:#666;font-style:italic} code{font-size:.85em}
header.meta,footer.meta{background:#f3f6fa;padding:.6rem 1rem;border-radius:6px}
"""


@dataclass
class EvidencePack:
    html: str
    sha256: str
    products: list[str]
    at: dt.datetime
    generated_at: dt.datetime
    charts: int


def build_pack(con: duckdb.DuckDBPyConnection, *, user: access.User, product: str | None = None,
               domain: str | None = None, everything: bool = False, at: dt.datetime | str | None = None,
               record: bool = True) -> EvidencePack:
    """Render the pack (requires export_evidence) and audit the export."""
    scope = f"product:{product}" if product else (f"domain:{domain}" if domain else "all")
    access.require(user, "export_evidence", target=scope)
    generated_at = now_utc()
    at_time = parse_at(at) if isinstance(at, str) else at
    as_of = at_time or generated_at
    products = scope_products(con, product=product, domain=domain, everything=everything)
    chain = audit_verify.verify(con)
    charts = _Charts()
    body = "".join(_product_html(con, pid, as_of, charts, chain) for pid in products)
    version = generator_version()
    title = f"meshgov evidence pack — {scope}"
    when = ("as of " + esc(as_of.isoformat(sep=" ", timespec="seconds")) + " UTC"
            if at_time else "current state")
    document = (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        # No request may leave the file: scripts and styles inline only, nothing else.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
        "script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data:; font-src data:\">"
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>"
        f'<header class="meta"><h1>{esc(title)}</h1>'
        f'<p>{when} · generated at <span data-field="generated-at">{esc(generated_at.isoformat(sep=" ", timespec="seconds"))} UTC</span>'
        f' by {esc(user.email)} · generator <span data-field="generator">{esc(version)}</span> · '
        f"{len(products)} product(s) · audit chain "
        f'<span class="{"ok" if chain.ok else "bad"}">{"intact" if chain.ok else "BROKEN"}</span></p>'
        + "<nav><ul>" + "".join(f'<li><a href="#{esc(p)}-contract">{esc(p)}</a></li>' for p in products)
        + "</ul></nav></header>"
        + body
        + f'<footer class="meta"><p>Generated at {esc(generated_at.isoformat(sep=" ", timespec="seconds"))} UTC '
          f"by {esc(version)}. This file is self-contained: it loads nothing from the network. The export is "
          "recorded in the audit trail with this file's SHA-256.</p></footer></body></html>")
    digest = hashlib.sha256(document.encode("utf-8")).hexdigest()
    if record:
        audit.record(con, actor=user, action="export", target=scope,
                     after={"format": "html", "kind": "evidence_pack", "products": products,
                            "at": at_time.isoformat() if at_time else None, "sha256": digest,
                            "generator": version})
    return EvidencePack(document, digest, products, as_of, generated_at, charts.count)
