"""meshgov: the frame. Settings, navigation built from the pages, shared sidebar."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="meshgov", page_icon="🕸️", layout="wide")

# (file, title, icon, url path). Only pages that work are listed. Pages live in views/, not
# pages/: Streamlit still serves a pages/ folder's files directly on a fresh URL (legacy
# multipage discovery), which would skip this frame (deep links lost the sidebar, and a
# login gate here could be bypassed). Measured with streamlit 1.67.
PAGES = [
    ("views/overview.py", "Overview", ":material/dashboard:", "overview"),
    ("views/catalog.py", "Catalog", ":material/menu_book:", "catalog"),
    ("views/checks.py", "Checks", ":material/fact_check:", "checks"),
    ("views/lineage.py", "Lineage", ":material/account_tree:", "lineage"),
]


def main() -> None:
    pages = [st.Page(path, title=title, icon=icon, url_path=url) for path, title, icon, url in PAGES]
    nav = st.navigation(pages)
    with st.sidebar:
        st.markdown("### meshgov")
        st.caption("Freedom with guardrails: the mesh's contracts, checks and lineage in one place.")
    nav.run()


main()
