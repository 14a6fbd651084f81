"""Admin: role bindings (who holds which role) and the permission matrix."""

from __future__ import annotations

import streamlit as st

from catalog import access, role_bindings
from ui.auth import page_user, require_or_stop
from ui.db import conn
from ui.tables import shown
from ui.text import md

user = page_user("admin")
require_or_stop(user, "manage_roles")  # the page is admin-only; grant/revoke check again

st.title("Admin: roles and permissions")
bindings_tab, matrix_tab = st.tabs(["Role bindings", "Permission matrix"])

with bindings_tab:
    st.caption("A user holds every role bound to their email and to any group in their login "
               f"token; with none bound they get **{role_bindings.default_role() or 'no access'}**. "
               "Every change is in the audit trail.")
    with st.form("grant_form", clear_on_submit=True):
        kind_col, subject_col, role_col = st.columns([1, 3, 2])
        kind = kind_col.selectbox("By", role_bindings.SUBJECT_KINDS, key="grant_kind",
                                 help="email: applies only when the provider verified it; "
                                      "sub: the provider's account id; group: a groups-claim value")
        subject = subject_col.text_input("Email, group or sub", key="grant_subject")
        role = role_col.selectbox("Role", access.ROLES, key="grant_role",
                                  format_func=lambda r: r.replace("_", " "))
        if st.form_submit_button("Grant role", type="primary", key="grant_submit"):
            try:
                with conn() as con:
                    changed = role_bindings.grant(con, user=user, kind=kind, subject=subject, role=role)
            except (access.PermissionDenied, ValueError) as exc:
                st.error(md(exc))
            else:
                if changed:
                    st.success(f"Granted {role} to {kind} {md(subject.strip())}.")
                else:
                    st.info(f"{kind} {md(subject.strip())} already holds {role}.")

    with conn() as con:
        bindings = role_bindings.list_bindings(con)
    if bindings.empty:
        st.info("No role bindings yet: everyone who logs in gets the default role.")
    else:
        st.dataframe(shown(bindings), hide_index=True, width="stretch",
                     column_config={"subject_kind": "by", "granted_at": st.column_config.TextColumn("granted (UTC)")})
        labels = [f"{r.role} ← {r.subject_kind} {r.subject}" for r in bindings.itertuples()]
        picked = st.selectbox("Revoke a binding", range(len(labels)), format_func=labels.__getitem__,
                              index=None, key="revoke_pick", placeholder="choose a binding")
        if st.button("Revoke", key="revoke_submit", disabled=picked is None):
            row = bindings.iloc[picked]
            try:
                with conn() as con:
                    role_bindings.revoke(con, user=user, kind=row.subject_kind, subject=row.subject,
                                  role=row.role)
            except (access.PermissionDenied, ValueError) as exc:
                st.error(md(exc))
            else:
                st.toast(f"Revoked {row.role} from {row.subject_kind} {md(row.subject)}.")
                st.rerun()  # the table above was drawn before the revoke

with matrix_tab:
    # One row per page or action and one column per role: six role columns fit at 1440 px,
    # where one column per page and action (17) needed horizontal scrolling.
    matrix = access.permission_matrix().set_index("role")
    st.markdown("  \n".join(f"**{role.replace('_', ' ')}** — {md(matrix.loc[role, 'description'])}"
                            for role in matrix.index))
    grants = matrix.drop(columns=["description"]).T.rename_axis("page or action")
    grants.index = [name if name.startswith("page: ") else f"{name} — {access.ACTION_DESCRIPTIONS[name]}"
                    for name in grants.index]
    st.dataframe(grants, width="stretch", height=35 * (len(grants) + 1) + 3,
                 column_config={"_index": st.column_config.TextColumn("page or action", width="large"),
                                **{role: st.column_config.CheckboxColumn(role.replace("_", " "), disabled=True,
                                                                         width=90)
                                   for role in grants.columns}})
    st.caption("Pages a role does not see are left out of its navigation; actions are refused "
               "by the functions themselves (catalog.access.require), whatever the page shows.")
