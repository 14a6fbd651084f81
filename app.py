"""meshgov: the frame. Settings, navigation built from the pages, shared sidebar."""

from __future__ import annotations

import streamlit as st

from catalog import access
from ui.auth import current_user, render_identity_sidebar, show_refusal
from ui.text import md

st.set_page_config(page_title="meshgov", page_icon="🕸️", layout="wide")

# (page key, file, title, icon, url path). Only pages that work are listed. Pages live in views/, not
# pages/: Streamlit still serves a pages/ folder's files directly on a fresh URL (legacy
# multipage discovery), which would skip this frame (deep links lost the sidebar, and a
# login gate here could be bypassed). Measured with streamlit 1.67.
# The page key is the one catalog.access.PAGE_ACCESS uses; each view checks it again itself
# (ui.auth.page_user), so a page reached any other way still refuses the wrong role.
PAGES = [
    ("overview", "views/overview_page.py", "Overview", ":material/dashboard:", "overview"),
    ("catalog", "views/catalog_page.py", "Catalog", ":material/menu_book:", "catalog"),
    ("checks", "views/checks_page.py", "Checks", ":material/fact_check:", "checks"),
    ("lineage", "views/lineage_page.py", "Lineage", ":material/account_tree:", "lineage"),
    ("audit", "views/audit_page.py", "Audit trail", ":material/receipt_long:", "audit"),
    ("admin", "views/admin_page.py", "Admin", ":material/admin_panel_settings:", "admin"),
]


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
    default = next(key for key, *_ in PAGES if key in allowed)
    # Every page is routable; the menu lists only those this role may open, and the others
    # answer with the refusal.
    pages = [st.Page(path, title=title, icon=icon, url_path=url, default=key == default)
             if key in allowed else
             st.Page(refusal_page(user, key), title=title, icon=icon, url_path=url, visibility="hidden")
             for key, path, title, icon, url in PAGES]
    nav = st.navigation(pages)
    with st.sidebar:
        st.markdown("### meshgov")
        st.caption("Freedom with guardrails: the mesh's contracts, checks and lineage in one place.")
    render_identity_sidebar(user)
    nav.run()


main()
