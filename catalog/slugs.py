"""How a name becomes an id (product, domain): catalog.odcs.slug. A module of its own, with
nothing heavy to import, so that the seed's contract-writer processes start in ~0.3 s
instead of importing the ODCS model, pandas and DuckDB (~1.4 s CPU each)."""

from __future__ import annotations

import re
import unicodedata


def slug(text: str) -> str:
    """Lower-case words joined by '-'. Letters of every script are kept: an ASCII-only slug
    turned every non-Latin name into 'unnamed', merging unrelated products into one."""
    value = re.sub(r"[\W_]+", "-", unicodedata.normalize("NFC", text).lower()).strip("-")
    return value or "unnamed"
