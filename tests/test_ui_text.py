"""ui.text: a user-controlled string as Markdown source that shows exactly its text.

The reference is CommonMark's rule (a backslash before ASCII punctuation shows that
character) plus Streamlit's GFM autolinking of bare URLs and e-mail addresses, which the
browser test (tests/test_ui_injection_browser.py) checks in a real page."""

from __future__ import annotations

import re
import string

import pytest

from ui.text import md, plotly_text, url_param

HOSTILE = [
    "[Session expired](https://evil.example/login)",
    "![t](https://evil.example/p.png)",
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "`code` breaks out of ``backticks``",
    ":red[coloured] :material/lock: $x^2$ **bold** _it_ ~~gone~~",
    "# heading\n- list\n> quote\n1. one",
    "https://evil.example/bare www.evil.example mallory@evil.example",
    "back\\slash \\[ \\\\ &amp; &#60;",
]


def shown(source: str) -> str:
    """What CommonMark shows for source whose every punctuation character is escaped."""
    return re.sub(r"\\([!-/:-@\[-`{-~])", r"\1", source).replace("\u2060", "")


@pytest.mark.parametrize("text", HOSTILE)
def test_md_shows_exactly_the_text(text):
    assert shown(md(text)) == text, f"round trip of {text!r}"


@pytest.mark.parametrize("text", HOSTILE)
def test_md_leaves_no_markdown_punctuation_unescaped(text):
    source = md(text)
    bare = re.sub(r"\\[!-/:-@\[-`{-~]", "", source)
    assert not set(bare) & set(string.punctuation), f"unescaped punctuation in {source!r}"


def test_md_breaks_autolinks_with_an_invisible_joiner():
    source = md("see https://evil.example and www.evil.example or a@evil.example")
    assert "https\\:\u2060\\/\\/" in source and "www\u2060\\." in source and "a\\@\u2060evil" in source, source


def test_md_of_none_is_empty_and_of_numbers_their_text():
    assert md(None) == "" and md(3.5) == "3\\.5"


def test_plotly_text_and_url_param():
    assert plotly_text('<a href="https://evil.example">x</a>') == '&lt;a href="https://evil.example"&gt;x&lt;/a&gt;'
    assert url_param("a b&c=d/#e") == "a%20b%26c%3Dd%2F%23e"
