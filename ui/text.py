"""User-controlled strings as text, never markup.

Contract and card text, check reasons, lineage names, query parameters and identity claims
reach st.markdown-rendering calls (st.markdown, st.write, st.header, st.caption, st.error,
widget and expander labels...). Streamlit renders those as GitHub-flavoured Markdown, so a
product named `![x](https://evil.example/p.png)` made every viewer's browser fetch that URL,
and `[Session expired](https://evil.example/login)` in `?product=` became a link inside the
app's own warning box. `md()` backslash-escapes every ASCII punctuation character — CommonMark
shows an escaped punctuation character as itself — which also breaks bare-URL autolinks
(`https\\:\\/\\/…`), e-mail autolinks (`\\@`), HTML (`\\<`), Streamlit's `:red[…]` directives and
`$…$` maths. Plotly draws its own pseudo-HTML (`<a href>`, `<b>`) in titles and tick labels:
`plotly_text()` turns those characters into entities.
"""

from __future__ import annotations

import html
import string
from urllib.parse import quote

_ESCAPES = {ord(c): "\\" + c for c in string.punctuation}


def md(value: object) -> str:
    """`value` as Markdown source that renders as exactly its text (None → empty)."""
    if value is None:
        return ""
    return str(value).translate(_ESCAPES)


def md_join(values, sep: str = ", ") -> str:
    return sep.join(md(v) for v in values)


def plotly_text(value: object) -> str:
    """`value` for a plotly title, label or category: its pseudo-HTML shown as text."""
    return html.escape("" if value is None else str(value), quote=False)


def url_param(value: object) -> str:
    """`value` as one query-string value (a `?product=` link built from an id from a contract)."""
    return quote("" if value is None else str(value), safe="")
