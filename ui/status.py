"""One status vocabulary and one colour set for every page.

Icons are Streamlit Material icons (`:material/name:`), never emoji: Debian's Chromium has no
colour-emoji font and drew the emoji as empty boxes. Material icons render only where
Streamlit reads Markdown (st.markdown, captions, alerts, metric/expander/widget labels);
table cells and selectbox options show plain words (`label`), coloured by the table's style.
"""

from __future__ import annotations

STATUS_COLOURS = {
    "passed": "#15803d",
    "warning": "#b45309",
    "failed": "#b91c1c",
    "error": "#6d28d9",
    "skipped": "#6b7280",
}
STATUS_ICONS = {"passed": ":material/check_circle:", "warning": ":material/warning:",
                "failed": ":material/cancel:", "error": ":material/error:", "skipped": ":material/skip_next:"}
NO_STATUS_ICON = ":material/radio_button_unchecked:"
_MARKDOWN_COLOURS = {"passed": "green", "warning": "orange", "failed": "red", "error": "violet", "skipped": "gray"}


def badge(status: str | None) -> str:
    """Markdown badge for st.markdown: icon plus the word, coloured."""
    if not status:
        return ":gray[not checked yet]"
    return f":{_MARKDOWN_COLOURS.get(status, 'gray')}[{STATUS_ICONS.get(status, '')} {status}]"


def icon_label(status: str | None) -> str:
    """Icon and word for Markdown-rendering labels (metrics, expanders, alerts)."""
    return f"{STATUS_ICONS.get(status, NO_STATUS_ICON)} {status}" if status else "not checked"


def label(status: str | None) -> str:
    """The plain word, for table cells and selectbox options (where icons do not render)."""
    return status if status else "not checked"
