"""meshgov catalog: the store, ingestion, search and query functions.

Never imports streamlit: pages, the CLI and tests call the same functions with a connection.
"""
