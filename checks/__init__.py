"""meshgov checks engine: specs compiled to SQL, a sandbox for untrusted SQL, one result
model for every check kind. Never imports streamlit."""
