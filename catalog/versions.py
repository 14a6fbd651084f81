"""Reading contract and card versions: the one semantic-version parser (ingest warns when an
older version becomes the newest revision; the compatibility check judges the bump)."""

from __future__ import annotations

import re

_SEMVER = re.compile(r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:[-+].*)?$")


def semver(version: str | None) -> tuple[int, int, int] | None:
    """'v1.2' -> (1, 2, 0); pre-release and build suffixes ignored; None when not a version."""
    match = _SEMVER.match(str(version or "").strip())
    if not match:
        return None
    return tuple(int(part or 0) for part in match.groups())  # type: ignore[return-value]
