"""Untrusted Markdown (model cards, card-supplied names) made safe for st.markdown.

What st.markdown would otherwise do with a card's text: load remote images (a tracking pixel
in every viewer's browser), render Streamlit's own directives (`:red[...]`,
`:material/...:`, `$LaTeX$`), and follow links with any scheme. Raw HTML is never enabled
(no unsafe_allow_html), and it is escaped here too, so a `<script>` shows as text.
"""

from __future__ import annotations

import re

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_IMAGE = re.compile(r"!\[([^\]]*)\]\s*(\([^)]*\)|\[[^\]]*\])")
_LINK = re.compile(r"\[([^\]]*)\]\(\s*<?([^)\s>]*)>?(?:\s+\"[^\"]*\")?\s*\)")
_REF_DEF = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$", re.M)
_DIRECTIVE = re.compile(r":(?=[\w/-]+(?:\[|:))")
_SAFE_SCHEMES = ("http://", "https://", "mailto:")
_PLAIN_SPECIALS = re.compile(r"([\\`*_{}\[\]()#+\-.!|>~<$:])")


def _link(match: re.Match) -> str:
    text, url = match.group(1), match.group(2)
    if url.lower().startswith(_SAFE_SCHEMES):
        return f"[{text}]({url})"
    return f"{text} ({url})" if url else text


_FENCE = re.compile(r"^(```|~~~)[^\n]*\n.*?^\1[ \t]*$", re.S | re.M)


def safe_markdown(text: str) -> str:
    """A card's Markdown with images replaced by their alt text, HTML escaped, only
    http(s)/mailto links kept, and Streamlit directives and LaTeX neutralised. Fenced code
    blocks are kept as they are: Markdown shows them literally."""
    text = text.replace("\r\n", "\n")
    parts, last = [], 0
    for fence in _FENCE.finditer(text):
        parts += [_prose(text[last:fence.start()]), fence.group(0)]
        last = fence.end()
    return "".join(parts + [_prose(text[last:])])


def _prose(text: str) -> str:
    text = _COMMENT.sub("", text)
    text = _IMAGE.sub(lambda m: f"[image not shown: {m.group(1) or 'no description'}]", text)
    text = _REF_DEF.sub("", text)  # reference-style definitions could still feed an image
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    # Blockquote markers were escaped with the rest: put them back at line starts.
    text = re.sub(r"^(\s{0,3})&gt;", r"\1>", text, flags=re.M)
    text = _LINK.sub(_link, text)
    text = text.replace("$", "\\$")
    return _DIRECTIVE.sub(r"\\:", text)


def plain(text: object) -> str:
    """Any card- or data-supplied string as literal text inside st.markdown."""
    return _PLAIN_SPECIALS.sub(r"\\\1", str(text)).replace("\n", " ")
