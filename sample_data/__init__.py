"""The deterministic sample mesh: data files, ODCS contracts and planted defects.

`generate.seed(db)` writes Parquet data and contracts, then ingests the contracts through the
same path as users' files. The scenario and its planted defects are listed in SCENARIO.md.
"""
