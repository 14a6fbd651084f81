"""User-controlled strings as text, never markup.

Contract and card text, check reasons, lineage names, query parameters and identity claims
reach st.markdown-rendering calls (st.markdown, st.write, st.header, st.caption, st.error,
widget and expander labels...). Streamlit renders those as GitHub-flavoured Markdown, so a
product named `![x](https://evil.example/p.png)` made every viewer's browser fetch that URL,
and `[Session expired](https://evil.example/login)` in `?product=` became a link inside the
app's own warning box. `md()` backslash-escapes every ASCII punctuation character — CommonMark
shows an escaped punctuation character as itself — which stops links, images, HTML (`\\<`),
emphasis, Streamlit's `:red[…]` directives and `$…$` maths; bare URLs and e-mail addresses
are autolinked even when escaped, so a word joiner is put inside them. Plotly draws its own
pseudo-HTML (`<a href>`, `<b>`) in titles and tick labels: `plotly_text()` turns those
characters into entities.
"""

from __future__ import annotations

import html
import re
import string
from urllib.parse import quote

_ESCAPES = {ord(c): "\\" + c for c in string.punctuation}
# Streamlit's Markdown (remark-gfm) also turns bare `https://…`, `www.…` and `a@b.c` into links
# *after* escapes are resolved, in the text itself. A WORD JOINER (U+2060, invisible, no width)
# inside each of those patterns breaks the match and leaves the text as it reads.
_JOINER = "\u2060"
_AUTOLINK_PARTS = re.compile(r"(?<=:)(?=//)|(?i:(?<=www)(?=\.))|(?<=@)")


def md(value: object) -> str:
    """`value` as Markdown source that renders as exactly its text (None → empty).

    The shown text differs from `value` only by invisible word joiners inside URLs and
    e-mail addresses, which must not become links."""
    if value is None:
        return ""
    return _AUTOLINK_PARTS.sub(_JOINER, str(value)).translate(_ESCAPES)


def md_join(values, sep: str = ", ") -> str:
    return sep.join(md(v) for v in values)


def plotly_text(value: object) -> str:
    """`value` for a plotly title, label or category: its pseudo-HTML shown as text."""
    return html.escape("" if value is None else str(value), quote=False)


def url_param(value: object) -> str:
    """`value` as one query-string value (a `?product=` link built from an id from a contract)."""
    return quote("" if value is None else str(value), safe="")
