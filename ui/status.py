"""One status vocabulary and one colour set for every page."""

from __future__ import annotations

STATUS_COLOURS = {
    "passed": "#15803d",
    "warning": "#b45309",
    "failed": "#b91c1c",
    "error": "#6d28d9",
    "skipped": "#6b7280",
}
STATUS_ICONS = {"passed": "✅", "warning": "⚠️", "failed": "❌", "error": "🛑", "skipped": "⏭️"}


def badge(status: str | None) -> str:
    """Markdown badge for st.markdown: icon plus the word, coloured."""
    if not status:
        return ":gray[not checked yet]"
    colour = {"passed": "green", "warning": "orange", "failed": "red", "error": "violet",
              "skipped": "gray"}.get(status, "gray")
    return f":{colour}[{STATUS_ICONS.get(status, '')} {status}]"


def label(status: str | None) -> str:
    return f"{STATUS_ICONS.get(status, '')} {status}" if status else "not checked"
