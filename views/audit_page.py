"""Audit trail (legal): is the trail intact? who did what, when, to which product; export."""

from __future__ import annotations

import streamlit as st

from catalog import access, audit_query, audit_verify
from ui.auth import page_user
from ui.db import conn
from ui.text import md
from views.legal_sections import evidence_download

user = page_user("audit")

st.title("Audit trail")
st.caption("Every login, ingest, check run, policy and role change, unmasked PII view and "
           "export — chained by hashes, so a row changed or removed in the database shows here.")

anchor_text = st.text_input("Anchor (optional)", key="audit_anchor",
                            placeholder='{"seq": 120, "hash": "…", "at": "…"} from `python -m catalog audit anchor`',
                            help="A head kept outside the DB: proves no row up to it was removed.")
try:
    anchor = audit_verify.parse_anchor(anchor_text) if anchor_text.strip() else None
except ValueError as exc:
    st.warning(f"Anchor ignored: {md(exc)}")
    anchor = None

with conn() as con:
    chain = audit_verify.verify(con, expect_head=anchor)
    choices = audit_query.distinct_values(con) if chain.kind != "schema" else {"actors": [], "actions": []}

# summary() says what was checked: "chain intact up to seq N, anchored at …" or "no anchor given".
if chain.ok:
    st.success(f"**The trail is intact** ({chain.seconds:.2f} s): {chain.summary()}", icon=":material/verified:")
else:
    where = f" at seq {chain.first_broken_seq}" if chain.first_broken_seq is not None else ""
    st.error(f"**The trail is broken{where}** ({chain.kind}): {md(chain.reason)}", icon=":material/gpp_bad:")

left, middle, right = st.columns(3)
actor = left.selectbox("User", ["(anyone)", *choices["actors"]], key="audit_user")
actions = middle.multiselect("Action", choices["actions"], key="audit_action")
target = right.text_input("Product, target or details contain", key="audit_target",
                          placeholder="e.g. customer-profiles")
period = st.date_input("Time range (UTC)", value=(), key="audit_period")

filters = {
    "user": None if actor == "(anyone)" else actor,
    "action": actions or None,
    "target": target.strip() or None,
    "since": period[0] if len(period) >= 1 else None,
    "until": period[1] if len(period) == 2 else (period[0] if len(period) == 1 else None),
}

with conn() as con:
    rows = audit_query.query(con, **filters, limit=5000)

st.markdown(f"**{len(rows)} rows**" + (" (newest 5000 shown)" if len(rows) == 5000 else ""))
st.dataframe(
    rows, hide_index=True, width="stretch",
    column_config={
        "seq": st.column_config.NumberColumn("seq", format="%d"),
        "logged_at": st.column_config.DatetimeColumn("when (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "actor": "who", "via": "via", "action": "action", "target": "target",
        "before": "before", "after": "after",
        "prev_hash": None, "hash": st.column_config.TextColumn("hash", width="small"),
    },
)

if access.can(user, "export_evidence"):
    def _export() -> bytes:
        # Runs when the button is clicked, so the export row records a real download.
        with conn() as export_con:
            return audit_query.export_csv(export_con, requested_by=user, **filters)

    st.download_button("Export CSV (audited)", data=_export, icon=":material/download:", file_name="meshgov-audit.csv",
                       mime="text/csv", key="audit_export", on_click="ignore",
                       help="The file carries each row's hashes, so its chain can be re-checked.")
else:
    st.caption("Exporting evidence needs one of the roles "
               f"{', '.join(access.roles_allowing('export_evidence'))}.")

st.subheader("Evidence pack")
evidence_download(user, key="audit_evidence")
