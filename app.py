"""meshgov: the frame. Settings, navigation built from the pages, shared sidebar."""

from __future__ import annotations

import streamlit as st

st.set_page_config(page_title="meshgov", page_icon="🕸️", layout="wide")

# (file, title, icon, url path). Only pages that work are listed.
PAGES = [
    ("pages/catalog.py", "Catalog", "📚", "catalog"),
]


def main() -> None:
    pages = [st.Page(path, title=title, icon=icon, url_path=url) for path, title, icon, url in PAGES]
    nav = st.navigation(pages)
    with st.sidebar:
        st.markdown("### 🕸️ meshgov")
        st.caption("Freedom with guardrails: the mesh's contracts, checks and lineage in one place.")
    nav.run()


main()
