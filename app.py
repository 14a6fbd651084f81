"""meshgov: the frame. Settings, navigation built from the pages, shared sidebar."""

from __future__ import annotations

import streamlit as st

from catalog import access
from ui.auth import current_user, render_identity_sidebar, show_refusal
from ui.text import md

st.set_page_config(page_title="meshgov", page_icon=":material/hub:", layout="wide")

# The pages come from one table, catalog.access.PAGE_TABLE, which also rows the permission
# matrix. Pages live in views/, not pages/: Streamlit still serves a pages/ folder's files
# directly on a fresh URL (legacy multipage discovery), which would skip this frame (deep
# links lost the sidebar, and a login gate here could be bypassed). Measured with streamlit
# 1.67. Each view checks its key again itself (ui.auth.page_user), so a page reached any
# other way still refuses the wrong role.


def refusal_page(user: access.User, key: str):
    """What a page this user may not open shows in its place: only the app's refusal, naming
    the roles that may open it. The view's file never runs, so none of its data is read.
    Registered (not left out) so a typed /admin reads why, not Streamlit's "Page not found"."""
    def refused() -> None:
        show_refusal(access.PageDenied(user, key))
    refused.__name__ = f"refused_{key}"
    return refused


def main() -> None:
    user = current_user()  # login screen, loopback refusal or persona switcher; may st.stop()
    allowed = set(access.visible_pages(user))
    if not allowed:
        st.error(f"{md(user.email)} holds no role that opens a page here; ask an admin for one.")
        st.stop()
    default = next(page.key for page in access.PAGE_TABLE if page.key in allowed)
    # Every page is routable; the menu lists only those this role may open, and the others
    # answer with the refusal.
    pages = [st.Page(page.file, title=page.title, icon=page.icon, url_path=page.key,
                     default=page.key == default)
             if page.key in allowed else
             st.Page(refusal_page(user, page.key), title=page.title, icon=page.icon, url_path=page.key,
                     visibility="hidden")
             for page in access.PAGE_TABLE]
    nav = st.navigation(pages)
    with st.sidebar:
        st.markdown("### meshgov")
        st.caption("Freedom with guardrails: the mesh's contracts, checks and lineage in one place.")
    render_identity_sidebar(user)
    nav.run()
    if "lineage" in allowed:
        # The lineage page draws with pyvis, whose import and template cost ~0.3 s of CPU on
        # its first drawing: made in the background once this run's page is drawn.
        from ui import lineage_drawing

        lineage_drawing.prepare_in_background()


main()
