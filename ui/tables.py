"""Tables as a reader sees them: a missing value is an empty-looking dash, never "None".

st.dataframe prints a null cell as the word "None" (or "NaT"), which read as data on the
Checks page ("Checked: None"). `shown(df)` turns every missing cell into MISSING; columns
that hold one become text (every cell, so Arrow gets one type), the others keep their type
(and their numeric sorting).
Timestamps become "YYYY-MM-DD HH:MM" text, which sorts the same way.
"""

from __future__ import annotations

import pandas as pd

MISSING = "—"


def shown(frame: pd.DataFrame, *, timestamp_format: str = "%Y-%m-%d %H:%M") -> pd.DataFrame:
    """A copy of `frame` for st.dataframe: no null cell left (see the module note)."""
    out = frame.copy()
    for name in out.columns:
        column = out[name]
        if pd.api.types.is_datetime64_any_dtype(column):
            out[name] = column.dt.strftime(timestamp_format).astype(object).where(column.notna(), MISSING)
            continue
        # Column-wise (a Python test per cell cost ~2 s at 100k rows): isna() finds None, NaN,
        # NaT and pd.NA, and leaves lists and dicts in a cell alone.
        missing = column.isna()
        if missing.any():
            # The whole column as text: numbers beside "—" made Arrow's conversion fail,
            # and Streamlit logged a traceback before turning the column into text itself.
            texts = column[~missing].astype(object).map(lambda value: value if isinstance(value, str) else str(value))
            out[name] = pd.Series(MISSING, index=column.index, dtype=object).where(missing, texts)
    return out


_TYPED_COLUMNS = {"number", "progress", "datetime", "date", "time", "checkbox", "link"}


def fitting_config(frame: pd.DataFrame, column_config: dict) -> dict:
    """`column_config` for `shown(frame)`: a typed column (number, progress, date, checkbox)
    that `shown` turned into text for its missing cells gets a text column of the same label,
    width and help — a number column would not draw "—"."""
    import streamlit as st

    fitted = {}
    for name, config in column_config.items():
        typed = isinstance(config, dict) and (config.get("type_config") or {}).get("type") in _TYPED_COLUMNS
        if typed and name in frame.columns and frame[name].dtype == object \
                and (frame[name] == MISSING).any():
            config = st.column_config.TextColumn(config.get("label"), help=config.get("help"),
                                                 width=config.get("width"))
        fitted[name] = config
    return fitted
